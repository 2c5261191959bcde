import { describe, expect, it } from 'vitest';
import { CalculatorError, createCalculatorTool, formatNumber } from '../../src/tools/calculator.js';

describe('calculator tool', () => {
  const calculator = createCalculatorTool();

  it('is named calculator and takes an expression', () => {
    expect(calculator.name).toBe('calculator');
    expect(calculator.schema.safeParse({ expression: '1 + 1' }).success).toBe(true);
    expect(calculator.schema.safeParse({ expr: '1 + 1' }).success).toBe(false);
  });

  it('returns the result as text', async () => {
    await expect(calculator.invoke({ expression: '(2 + 3) * sqrt(16) / 4' })).resolves.toBe('5');
  });

  it('hides floating-point noise in the result', async () => {
    await expect(calculator.invoke({ expression: '0.1 + 0.2' })).resolves.toBe('0.3');
    expect(formatNumber(-0)).toBe('0');
    expect(formatNumber(1 / 3)).toBe('0.333333333333333');
    expect(formatNumber(1e21)).toBe('1e+21');
  });

  it('answers a tool call with a tool message', async () => {
    const message = await calculator.invoke({ type: 'tool_call', id: 'call_1', name: 'calculator', args: { expression: '6 * 7' } });
    expect(message.content).toBe('42');
    expect(message.tool_call_id).toBe('call_1');
  });

  it('throws a CalculatorError for a bad expression', async () => {
    await expect(calculator.invoke({ expression: '1 / 0' })).rejects.toThrow(CalculatorError);
    await expect(calculator.invoke({ expression: '1 / 0' })).rejects.toThrow('division by zero at position 3');
  });
});
