-- Indexes for the analytics reports' message and conversation counts and the monitoring
-- route's recent runs, which otherwise read whole tables at volume (measured on 1M
-- messages by bench/analytics.ts). Both message indexes carry the columns the counts
-- read, so they are answered from the index alone.
-- Every user's messages in a time range (all-users reports).
CREATE INDEX messages_created_idx ON messages (created_at) INCLUDE (conversation_id, role);
-- One user's messages in a time range, reached through their conversations.
CREATE INDEX messages_conversation_created_idx ON messages (conversation_id, created_at) INCLUDE (role);
-- Conversations created in a time range (all-users reports).
CREATE INDEX conversations_created_idx ON conversations (created_at) INCLUDE (status);
-- The newest runs of everyone (monitoring, executions with all_users).
CREATE INDEX workflow_runs_started_idx ON workflow_runs (started_at DESC, id DESC);
