import { Annotation, MessagesAnnotation } from '@langchain/langgraph';

/**
 * State of every graph built from a definition: the conversation (LangGraph's
 * messages reducer: appends, replaces by id, honours RemoveMessage) and the number of
 * tool calls run so far in this run.
 */
export const GraphStateAnnotation = Annotation.Root({
  ...MessagesAnnotation.spec,
  toolCallCount: Annotation<number>({ reducer: (_previous, next) => next, default: () => 0 }),
});

export type GraphState = typeof GraphStateAnnotation.State;
export type GraphUpdate = typeof GraphStateAnnotation.Update;
