import { BUILTIN_TOOL_NAMES } from '../tools/tool-registry.js';
import type { GraphDefinition } from './definition.js';

/** A template name that no built-in definition has. */
export class UnknownTemplateError extends Error {
  override readonly name = 'UnknownTemplateError';
  constructor(readonly templateName: string) {
    super(`Unknown graph template ${JSON.stringify(templateName)}; templates: ${Object.keys(TEMPLATES).join(', ')}`);
  }
}

const SYSTEM_PROMPT = 'You are a helpful assistant.';
/** Messages the built-in templates keep (and a builder memory node without a window). */
export const MEMORY_WINDOW = 40;

export const FINAL_ANSWER_INSTRUCTION =
  'You have used every tool call allowed for this reply. Do not call any more tools: answer the user now ' +
  'from the information you already have, and say plainly if something could not be looked up.';

const TEMPLATES = {
  chat: {
    name: 'chat',
    description: 'System prompt, the recent history and one model call.',
    nodes: [
      { id: 'memory', type: 'memory', config: { window: MEMORY_WINDOW } },
      { id: 'model', type: 'model', config: { systemPrompt: SYSTEM_PROMPT } },
    ],
    edges: [
      { from: 'memory', to: 'model' },
      { from: 'model', to: '__end__' },
    ],
    entry: 'memory',
  },
  chat_with_tools: {
    name: 'chat_with_tools',
    description:
      'A model that may call the built-in tools, in a loop, until it answers; once the run reaches its ' +
      'tool-call limit the model is called once more, told to answer, with tool_choice "none".',
    nodes: [
      { id: 'memory', type: 'memory', config: { window: MEMORY_WINDOW } },
      { id: 'model', type: 'model', config: { systemPrompt: SYSTEM_PROMPT } },
      { id: 'tools', type: 'tools', config: { tools: [...BUILTIN_TOOL_NAMES] } },
      // Tools stay bound (with tool_choice "none") rather than dropped: Anthropic rejects
      // a history holding tool calls when no tools are defined.
      {
        id: 'final_answer',
        type: 'model',
        config: { systemPrompt: SYSTEM_PROMPT, instruction: FINAL_ANSWER_INSTRUCTION, tools: 'none' },
      },
    ],
    edges: [
      { from: 'memory', to: 'model' },
      // Every call the model asks for gets a tool message (run or refused), so the
      // limit is checked after the tools ran, never leaving a call unanswered.
      { from: 'model', to: 'tools', condition: 'has_tool_calls' },
      { from: 'model', to: '__end__', condition: 'no_tool_calls' },
      { from: 'tools', to: 'model', condition: 'tool_calls < limit' },
      { from: 'tools', to: 'final_answer', condition: 'tool_calls >= limit' },
      { from: 'final_answer', to: '__end__' },
    ],
    entry: 'memory',
  },
} satisfies Record<string, GraphDefinition>;

export type TemplateName = keyof typeof TEMPLATES;

function copy(definition: GraphDefinition): GraphDefinition {
  return structuredClone(definition);
}

/**
 * A built-in graph definition (a fresh copy: change it freely before `createGraph`).
 * @throws {UnknownTemplateError}
 */
export function getTemplate(name: string): GraphDefinition {
  if (!Object.hasOwn(TEMPLATES, name)) throw new UnknownTemplateError(name);
  return copy(TEMPLATES[name as TemplateName]);
}

/** Every built-in graph definition (copies), `chat` first. */
export function listTemplates(): GraphDefinition[] {
  return Object.values(TEMPLATES).map(copy);
}
