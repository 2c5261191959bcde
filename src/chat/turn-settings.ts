import type { DatabasePool } from 'slonik';
import { HttpError, RequestValidationError } from '../http/errors.js';
import { renderTemplate } from '../prompts/prompt-template.js';
import type { ConversationRow } from '../repositories/conversations-repository.js';
import { createProfilesRepository, type ProfileRow } from '../repositories/profiles-repository.js';
import { createPromptsRepository, type PromptRow } from '../repositories/prompts-repository.js';

/** What a chat request says about its settings (absent: not said). */
export type TurnChoices = {
  readonly userId: string;
  readonly profileId?: string | null | undefined;
  readonly promptId?: string | null | undefined;
  readonly promptVariables?: Readonly<Record<string, string>> | null | undefined;
  readonly provider?: string | null | undefined;
  readonly model?: string | null | undefined;
  readonly temperature?: number | null | undefined;
  readonly maxTokens?: number | null | undefined;
  readonly contextLimit?: number | null | undefined;
  readonly enableTools?: boolean | undefined;
  readonly enableMemory?: boolean | undefined;
  readonly systemPromptOverride?: string | null | undefined;
};

/**
 * The turn's settings once its profile and prompt are applied: each is the request's
 * value, else the profile's (else, later, the conversation's and the service's defaults).
 * The system prompt is the request's override, else the prompt's rendered template, else
 * the profile's system prompt.
 */
export type TurnSettings = {
  readonly provider: string | undefined;
  readonly model: string | undefined;
  readonly temperature: number | undefined;
  readonly maxTokens: number | undefined;
  /** Most input tokens sent (the request's context_limit, else the profile's context_window). */
  readonly contextLimit: number | undefined;
  /** The profile's top_p (the request has no field for it). */
  readonly topP: number | undefined;
  /** The profile's available_tools: the only tools offered; undefined: all the user's. */
  readonly allowedTools: readonly string[] | undefined;
  readonly enableTools: boolean | undefined;
  readonly enableMemory: boolean | undefined;
  readonly systemPrompt: string | undefined;
  /** The profile the turn ran with (recorded on the conversation and the run), or null. */
  readonly profileId: string | null;
  /** The prompt the turn ran with (recorded on the run), or null. */
  readonly promptId: string | null;
};

const profileProvider = (profile: ProfileRow | null): string | undefined =>
  profile?.llm_provider === null || profile?.llm_provider === 'default' ? undefined : profile?.llm_provider;

/**
 * Resolves a chat turn's profile and prompt. Reads only: nothing is written, so a turn
 * refused here (404 for a profile or prompt the user may not read, 422 for a missing
 * prompt variable) saves nothing.
 */
export const createTurnSettingsResolver = (pool: DatabasePool) => {
  const profiles = createProfilesRepository(pool);
  const prompts = createPromptsRepository(pool);

  /**
   * `conversation`: the user's conversation the turn continues (null: a new one). Its
   * recorded profile applies when the request names none; one that was deleted since is
   * skipped, while a profile the request names must be readable (404 otherwise).
   * @throws HttpError 404, RequestValidationError 422
   */
  const resolve = async (choices: TurnChoices, conversation: ConversationRow | null): Promise<TurnSettings> => {
    const requested = choices.profileId ?? undefined;
    let profile: ProfileRow | null = null;
    if (requested !== undefined) {
      profile = await profiles.findVisible(requested, choices.userId);
      if (profile === null) {
        throw new HttpError(404, 'Profile not found', 'profile_not_found');
      }
    } else if (conversation !== null && conversation.profile_id !== null) {
      profile = await profiles.findVisible(conversation.profile_id, choices.userId);
    }

    let prompt: PromptRow | null = null;
    let rendered: string | undefined;
    if (choices.promptId !== null && choices.promptId !== undefined) {
      prompt = await prompts.findVisible(choices.promptId, choices.userId);
      if (prompt === null) {
        throw new HttpError(404, 'Prompt not found', 'prompt_not_found');
      }
      const { text, issues } = renderTemplate(
        {
          content: prompt.content,
          format: prompt.template_format,
          variables: prompt.variables,
          requiredVariables: prompt.required_variables,
        },
        choices.promptVariables ?? {},
      );
      if (issues.length > 0) {
        throw new RequestValidationError(
          issues.map((issue) => ({ loc: ['body', 'prompt_variables', issue.field], msg: issue.message, type: issue.type })),
        );
      }
      rendered = text;
    }

    const provider = choices.provider ?? profileProvider(profile);
    // The profile's model belongs to its provider: a request naming another provider does not get it.
    const profileModel = provider === profileProvider(profile) ? (profile?.llm_model ?? undefined) : undefined;
    return {
      provider,
      model: choices.model ?? profileModel,
      temperature: choices.temperature ?? profile?.temperature,
      maxTokens: choices.maxTokens ?? profile?.max_tokens,
      contextLimit: choices.contextLimit ?? profile?.context_window,
      topP: profile?.top_p ?? undefined,
      allowedTools: profile?.available_tools ?? undefined,
      enableTools: choices.enableTools ?? profile?.enable_tools,
      enableMemory: choices.enableMemory ?? profile?.memory_enabled,
      systemPrompt: choices.systemPromptOverride ?? rendered ?? profile?.system_prompt ?? undefined,
      profileId: profile?.id ?? null,
      promptId: prompt?.id ?? null,
    };
  };

  return { resolve };
};

export type TurnSettingsResolver = ReturnType<typeof createTurnSettingsResolver>;
