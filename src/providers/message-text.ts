import type { BaseMessage } from '@langchain/core/messages';

/**
 * The text of a message: its string content, or the text blocks of multi-part content
 * joined by newlines (images and other non-text blocks carry no text to count or echo).
 */
export function messageText(message: BaseMessage): string {
  if (typeof message.content === 'string') return message.content;
  return message.content
    .map((block) => ('text' in block && typeof block.text === 'string' ? block.text : ''))
    .filter((text) => text !== '')
    .join('\n');
}
