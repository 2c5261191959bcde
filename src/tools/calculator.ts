import { tool } from '@langchain/core/tools';
import { z } from 'zod';
import { CONSTANT_NAMES, FUNCTION_NAMES, MAX_EXPRESSION_LENGTH, evaluateArithmetic } from './arithmetic.js';

export { CalculatorError } from './arithmetic.js';

/**
 * Formats a result for the model: 15 significant digits hide binary floating-point
 * noise (0.1 + 0.2 reads as 0.3) while keeping every digit a double can promise.
 */
export function formatNumber(value: number): string {
  const rounded = Number(value.toPrecision(15));
  return String(Object.is(rounded, -0) ? 0 : rounded);
}

/**
 * The `calculator` tool: evaluates an arithmetic expression without ever running it as
 * code. Its errors (a `CalculatorError` with the position) reach the model as an error
 * tool message through the graph's tools node.
 */
export function createCalculatorTool() {
  return tool(async ({ expression }) => formatNumber(evaluateArithmetic(expression)), {
    name: 'calculator',
    description:
      'Evaluates an arithmetic expression and returns the number. Supports + - * / % ^ (power), ' +
      `parentheses, unary minus, scientific notation, the functions ${FUNCTION_NAMES.join(', ')} ` +
      `(trigonometry in radians, log is base 10 or log(x, base), ln is natural) and the constants ${CONSTANT_NAMES.join(', ')}.`,
    schema: z.object({
      expression: z.string().describe(`The expression, e.g. "(2 + 3) * sqrt(16) / 4"; at most ${MAX_EXPRESSION_LENGTH} characters.`),
    }),
  });
}
