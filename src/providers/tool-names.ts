import type { BindToolsInput } from '@langchain/core/language_models/chat_models';

/**
 * Names of tools in any of the shapes `bindTools` accepts: a LangChain tool
 * (`{ name }`), an OpenAI tool definition (`{ type: 'function', function: { name } }`)
 * or an Anthropic one (`{ name, input_schema }`). Shapes without a name are skipped.
 */
export function toolNames(tools: readonly BindToolsInput[] | undefined): string[] {
  const names: string[] = [];
  for (const tool of tools ?? []) {
    const candidate = tool as { name?: unknown; function?: { name?: unknown } };
    if (typeof candidate.name === 'string') names.push(candidate.name);
    else if (typeof candidate.function?.name === 'string') names.push(candidate.function.name);
  }
  return names;
}
