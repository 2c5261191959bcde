import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CalculatorError, MAX_EXPRESSION_LENGTH, MAX_NESTING_DEPTH, evaluateArithmetic } from '../../src/tools/arithmetic.js';

function failure(expression: string): CalculatorError {
  try {
    evaluateArithmetic(expression);
  } catch (error) {
    if (error instanceof CalculatorError) return error;
    throw new Error(`expected a CalculatorError, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected ${JSON.stringify(expression)} to fail`);
}

describe('evaluateArithmetic', () => {
  it.each([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 - 4 - 3', 3],
    ['64 / 4 / 2', 8],
    ['2 ^ 3 ^ 2', 512],
    ['2 ** 3 ** 2', 512],
    ['(2 ^ 3) ^ 2', 64],
    ['7 % 4 * 2', 6],
    ['2 * 3 ^ 2', 18],
  ])('applies precedence and associativity: %s = %d', (expression, expected) => {
    expect(evaluateArithmetic(expression)).toBe(expected);
  });

  it.each([
    ['-3', -3],
    ['--3', 3],
    ['-2 ^ 2', -4],
    ['(-2) ^ 2', 4],
    ['2 ^ -1', 0.5],
    ['3 - -2', 5],
    ['-(1 + 2) * 2', -6],
    ['+4', 4],
  ])('handles unary signs: %s = %d', (expression, expected) => {
    expect(evaluateArithmetic(expression)).toBe(expected);
  });

  it.each([
    ['42', 42],
    ['3.25', 3.25],
    ['.5', 0.5],
    ['1e3', 1000],
    ['2.5E-2', 0.025],
    ['1.5e+2', 150],
  ])('reads the number %s', (expression, expected) => {
    expect(evaluateArithmetic(expression)).toBe(expected);
  });

  it.each([
    ['sqrt(16)', 4],
    ['abs(-2.5)', 2.5],
    ['round(2.5)', 3],
    ['round(3.14159, 2)', 3.14],
    ['floor(-1.5)', -2],
    ['ceil(1.2)', 2],
    ['min(4, 2, 8)', 2],
    ['max(4, 2, 8)', 8],
    ['pow(2, 10)', 1024],
    ['log(1000)', 3],
    ['log(8, 2)', 3],
    ['ln(e)', 1],
    ['exp(0)', 1],
    ['sin(0)', 0],
    ['cos(pi)', -1],
    ['tan(0)', 0],
    ['SQRT(9) + PI - pi', 3],
    ['max(1, min(5, 3)) * 2', 6],
  ])('evaluates the function call %s', (expression, expected) => {
    expect(evaluateArithmetic(expression)).toBeCloseTo(expected, 12);
  });

  it('knows the constants pi and e', () => {
    expect(evaluateArithmetic('pi')).toBe(Math.PI);
    expect(evaluateArithmetic('e')).toBe(Math.E);
  });

  it.each([
    ['1 +', 'unexpected end of input at position 4'],
    ['1 + * 2', 'unexpected "*" at position 5'],
    ['2 3', 'unexpected "3" at position 3'],
    ['(1 + 2', 'expected ")" but found end of input at position 7'],
    ['1 + 2)', 'unexpected ")" at position 6'],
    ['4 & 2', 'unexpected character "&" at position 3'],
    ['1.2.3', 'unexpected ".3" at position 4'],
    ['', 'empty expression'],
  ])('reports the position of a syntax error in %j', (expression, message) => {
    expect(failure(expression).message).toContain(message);
  });

  it.each([
    ['1 / 0', 'division by zero at position 3'],
    ['5 % (2 - 2)', 'modulo by zero at position 3'],
    ['sqrt(-4)', 'sqrt of a negative number at position 1'],
    ['ln(0)', 'ln of a non-positive number'],
    ['log(-1)', 'log of a non-positive number'],
    ['0 ^ -1', 'zero raised to a negative power'],
    ['(-8) ^ 0.5', 'power has no real result'],
    ['10 ^ 400', 'result is too large to represent'],
  ])('refuses the math domain error in %j', (expression, message) => {
    expect(failure(expression).message).toContain(message);
  });

  it.each([
    ['foo(1)', 'unknown function "foo" at position 1'],
    ['2 * tau', 'unknown name "tau" at position 5'],
    ['sqrt', 'sqrt is a function'],
    ['sqrt(1, 2)', 'sqrt() takes 1 argument, got 2'],
    ['max()', 'max() takes at least 1 argument, got 0'],
    ['round(1, 2, 3)', 'round() takes 1 to 2 arguments, got 3'],
  ])('names the unknown or misused function in %j', (expression, message) => {
    expect(failure(expression).message).toContain(message);
  });

  it.each([
    'process.exit()',
    'constructor',
    'constructor(1)',
    '__proto__(1)',
    'constructor.constructor("return process")()',
    '__proto__',
    'toString()',
    'hasOwnProperty(1)',
    'valueOf',
    'this',
    'globalThis',
    'require("fs")',
    '[1].map(x => x)',
    '1; process.exit(1)',
    '`${1}`',
  ])('never evaluates JavaScript: %j is an error', (expression) => {
    expect(() => evaluateArithmetic(expression)).toThrow(CalculatorError);
  });

  it.each([
    ['constructor', 'unknown name "constructor" at position 1'],
    ['2 + __proto__', 'unknown name "__proto__" at position 5'],
    ['constructor(1)', 'unknown function "constructor" at position 1'],
  ])('treats the object member %j as an unknown name', (expression, message) => {
    expect(failure(expression).message).toContain(message);
  });

  it('refuses input longer than the limit', () => {
    const atLimit = `1+${' '.repeat(MAX_EXPRESSION_LENGTH - 3)}1`;
    expect(atLimit).toHaveLength(MAX_EXPRESSION_LENGTH);
    expect(evaluateArithmetic(atLimit)).toBe(2);
    expect(failure(`${atLimit} `).message).toBe(
      `expression is ${MAX_EXPRESSION_LENGTH + 1} characters long; the limit is ${MAX_EXPRESSION_LENGTH}`,
    );
  });

  it('refuses nesting deeper than the limit', () => {
    const nested = (depth: number): string => `${'('.repeat(depth)}1${')'.repeat(depth)}`;
    expect(evaluateArithmetic(nested(MAX_NESTING_DEPTH))).toBe(1);
    expect(failure(nested(MAX_NESTING_DEPTH + 1)).message).toContain(`nesting deeper than ${MAX_NESTING_DEPTH} levels`);
    expect(failure(`${'-'.repeat(MAX_NESTING_DEPTH + 1)}1`).message).toContain('nesting deeper');
    expect(failure(`${'abs('.repeat(MAX_NESTING_DEPTH + 1)}1${')'.repeat(MAX_NESTING_DEPTH + 1)}`).message).toContain('nesting deeper');
  });
});

// --- Property: random well-formed expressions evaluate like their syntax tree. ---

type Ast =
  | { kind: 'num'; value: number }
  | { kind: 'neg'; operand: Ast }
  | { kind: 'bin'; op: '+' | '-' | '*' | '/' | '%'; left: Ast; right: Ast }
  | { kind: 'pow'; base: Ast; exponent: number };

class DivisionByZero extends Error {}

/** The reference: evaluates the generated tree directly, with the same float operations. */
function reference(ast: Ast): number {
  switch (ast.kind) {
    case 'num':
      return ast.value;
    case 'neg':
      return -reference(ast.operand);
    case 'pow':
      return reference(ast.base) ** ast.exponent;
    case 'bin': {
      const left = reference(ast.left);
      const right = reference(ast.right);
      if ((ast.op === '/' || ast.op === '%') && right === 0) throw new DivisionByZero();
      switch (ast.op) {
        case '+':
          return left + right;
        case '-':
          return left - right;
        case '*':
          return left * right;
        case '/':
          return left / right;
        case '%':
          return left % right;
      }
    }
  }
}

const PRECEDENCE = { '+': 1, '-': 1, '*': 2, '/': 2, '%': 2 } as const;
const precedence = (ast: Ast): number => (ast.kind === 'bin' ? PRECEDENCE[ast.op] : ast.kind === 'neg' ? 3 : ast.kind === 'pow' ? 4 : 5);

/**
 * Prints with the fewest parentheses the grammar needs, so the parser's precedence
 * and associativity are what rebuild the tree: a right operand of equal precedence is
 * parenthesised (left-associative), a power's base must bind tighter than unary minus.
 */
function print(ast: Ast): string {
  const wrap = (child: Ast, needs: boolean): string => (needs ? `(${print(child)})` : print(child));
  switch (ast.kind) {
    case 'num':
      return String(ast.value);
    case 'neg':
      return `-${wrap(ast.operand, precedence(ast.operand) < 3)}`;
    case 'pow':
      return `${wrap(ast.base, precedence(ast.base) <= 4)} ^ ${ast.exponent}`;
    case 'bin': {
      const p = PRECEDENCE[ast.op];
      return `${wrap(ast.left, precedence(ast.left) < p)} ${ast.op} ${wrap(ast.right, precedence(ast.right) <= p)}`;
    }
  }
}

const astArbitrary = fc.letrec<{ ast: Ast }>((tie) => ({
  ast: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ kind: fc.constant('num' as const), value: fc.integer({ min: 0, max: 20 }) }),
    fc.record({ kind: fc.constant('neg' as const), operand: tie('ast') }),
    fc.record({ kind: fc.constant('pow' as const), base: tie('ast'), exponent: fc.integer({ min: 0, max: 3 }) }),
    fc.record({
      kind: fc.constant('bin' as const),
      op: fc.constantFrom('+' as const, '-' as const, '*' as const, '/' as const, '%' as const),
      left: tie('ast'),
      right: tie('ast'),
    }),
  ),
})).ast;

describe('evaluateArithmetic on generated expressions', () => {
  it('agrees with a direct evaluation of the expression tree', () => {
    fc.assert(
      fc.property(astArbitrary, (ast) => {
        const source = print(ast);
        fc.pre(source.length <= MAX_EXPRESSION_LENGTH);
        let expected: number;
        try {
          expected = reference(ast);
        } catch (error) {
          if (!(error instanceof DivisionByZero)) throw error;
          expect(() => evaluateArithmetic(source)).toThrow(/(division|modulo) by zero/);
          return;
        }
        fc.pre(Number.isFinite(expected));
        expect(evaluateArithmetic(source)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
