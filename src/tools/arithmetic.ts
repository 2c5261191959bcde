/**
 * A safe arithmetic evaluator: a hand-written tokenizer and recursive-descent parser
 * over numbers, operators, a fixed set of functions and two constants. Nothing in the
 * input is ever handed to `eval`/`Function`, and identifiers resolve only against the
 * tables below (own properties of null-prototype objects, so `constructor`,
 * `__proto__` and friends are unknown names like any other).
 *
 * Grammar (lowest precedence first; `^` and `**` are the same operator):
 *   expression := additive
 *   additive   := multiplicative (('+' | '-') multiplicative)*        left-assoc
 *   multiplicative := unary (('*' | '/' | '%') unary)*                left-assoc
 *   unary      := ('-' | '+') unary | power                           so -2^2 = -(2^2)
 *   power      := primary (('^' | '**') unary)?                       right-assoc, 2^-1 ok
 *   primary    := number | constant | name '(' args ')' | '(' expression ')'
 *
 * Positions in error messages are 1-based character columns of the input.
 */

export const MAX_EXPRESSION_LENGTH = 1000;
export const MAX_NESTING_DEPTH = 64;

/** Any problem with an expression: bad syntax, unknown name, or a math domain error. */
export class CalculatorError extends Error {
  override readonly name = 'CalculatorError';
  constructor(
    message: string,
    /** 1-based column the problem was found at, when it has one. */
    readonly position?: number,
    hint?: string,
  ) {
    super(`${message}${position === undefined ? '' : ` at position ${position}`}${hint ? `; ${hint}` : ''}`);
  }
}

type Token =
  | { kind: 'number'; value: number; text: string; pos: number }
  | { kind: 'name'; text: string; pos: number }
  | { kind: 'op'; text: '+' | '-' | '*' | '/' | '%' | '^' | '(' | ')' | ','; pos: number }
  | { kind: 'end'; text: ''; pos: number };

export type ArithmeticNode =
  | { kind: 'number'; value: number; pos: number }
  | { kind: 'unary'; op: '-' | '+'; operand: ArithmeticNode; pos: number }
  | { kind: 'binary'; op: '+' | '-' | '*' | '/' | '%' | '^'; left: ArithmeticNode; right: ArithmeticNode; pos: number }
  | { kind: 'call'; name: string; args: ArithmeticNode[]; pos: number };

const NUMBER = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const WHITESPACE = /\s+/y;

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    WHITESPACE.lastIndex = i;
    if (WHITESPACE.test(input)) {
      i = WHITESPACE.lastIndex;
      continue;
    }
    const pos = i + 1;
    NUMBER.lastIndex = i;
    const number = NUMBER.exec(input);
    if (number) {
      const text = number[0];
      tokens.push({ kind: 'number', value: Number(text), text, pos });
      i += text.length;
      continue;
    }
    NAME.lastIndex = i;
    const name = NAME.exec(input);
    if (name) {
      tokens.push({ kind: 'name', text: name[0], pos });
      i += name[0].length;
      continue;
    }
    const char = input.charAt(i);
    if (char === '*' && input.charAt(i + 1) === '*') {
      tokens.push({ kind: 'op', text: '^', pos });
      i += 2;
      continue;
    }
    if ('+-*/%^(),'.includes(char)) {
      tokens.push({ kind: 'op', text: char as '+', pos });
      i += 1;
      continue;
    }
    throw new CalculatorError(`unexpected character ${JSON.stringify(char)}`, pos);
  }
  tokens.push({ kind: 'end', text: '', pos: input.length + 1 });
  return tokens;
}

type MathFunction = { arity: [min: number, max: number]; apply: (args: number[], pos: number) => number };

function domain(ok: boolean, message: string, pos: number): void {
  if (!ok) throw new CalculatorError(message, pos);
}

function raise(base: number, exponent: number, pos: number): number {
  domain(!(base === 0 && exponent < 0), 'zero raised to a negative power', pos);
  const value = base ** exponent;
  domain(!Number.isNaN(value), 'power has no real result', pos);
  return value;
}

/** A lookup table with no prototype: only its own keys resolve, never `constructor` & co. */
function table<T>(entries: Record<string, T>): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, entries);
}

const FUNCTIONS = table<MathFunction>({
  sqrt: { arity: [1, 1], apply: ([x = 0], pos) => (domain(x >= 0, 'sqrt of a negative number', pos), Math.sqrt(x)) },
  abs: { arity: [1, 1], apply: ([x = 0]) => Math.abs(x) },
  round: {
    arity: [1, 2],
    apply: ([x = 0, digits = 0], pos) => {
      domain(Number.isInteger(digits) && digits >= 0 && digits <= 15, 'round digits must be an integer from 0 to 15', pos);
      const factor = 10 ** digits;
      return Math.round(x * factor) / factor;
    },
  },
  floor: { arity: [1, 1], apply: ([x = 0]) => Math.floor(x) },
  ceil: { arity: [1, 1], apply: ([x = 0]) => Math.ceil(x) },
  min: { arity: [1, Infinity], apply: (args) => Math.min(...args) },
  max: { arity: [1, Infinity], apply: (args) => Math.max(...args) },
  pow: { arity: [2, 2], apply: ([x = 0, y = 0], pos) => raise(x, y, pos) },
  log: {
    // log(x) is base 10; log(x, base) takes an explicit base.
    arity: [1, 2],
    apply: ([x = 0, base], pos) => {
      domain(x > 0, 'log of a non-positive number', pos);
      if (base === undefined) return Math.log10(x);
      domain(base > 0 && base !== 1, 'log base must be positive and not 1', pos);
      return Math.log(x) / Math.log(base);
    },
  },
  ln: { arity: [1, 1], apply: ([x = 0], pos) => (domain(x > 0, 'ln of a non-positive number', pos), Math.log(x)) },
  exp: { arity: [1, 1], apply: ([x = 0]) => Math.exp(x) },
  sin: { arity: [1, 1], apply: ([x = 0]) => Math.sin(x) },
  cos: { arity: [1, 1], apply: ([x = 0]) => Math.cos(x) },
  tan: { arity: [1, 1], apply: ([x = 0]) => Math.tan(x) },
});

const CONSTANTS = table<number>({
  pi: Math.PI,
  e: Math.E,
});

export const FUNCTION_NAMES = Object.keys(FUNCTIONS);
export const CONSTANT_NAMES = Object.keys(CONSTANTS);

function describe(token: Token): string {
  return token.kind === 'end' ? 'end of input' : `${JSON.stringify(token.text)}`;
}

class Parser {
  private index = 0;
  private depth = 0;

  constructor(private readonly tokens: Token[]) {}

  parse(): ArithmeticNode {
    if (this.peek().kind === 'end') throw new CalculatorError('empty expression');
    const node = this.additive();
    const next = this.peek();
    if (next.kind !== 'end') throw new CalculatorError(`unexpected ${describe(next)}`, next.pos);
    return node;
  }

  private peek(): Token {
    // The token list always ends with an 'end' token and the parser never moves past it.
    return this.tokens[this.index] as Token;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.index += 1;
    return token;
  }

  private isOp(...ops: string[]): boolean {
    const token = this.peek();
    return token.kind === 'op' && ops.includes(token.text);
  }

  private expect(op: ')' | '('): void {
    const token = this.peek();
    if (token.kind === 'op' && token.text === op) {
      this.next();
      return;
    }
    throw new CalculatorError(`expected ${JSON.stringify(op)} but found ${describe(token)}`, token.pos);
  }

  private enter(pos: number): void {
    this.depth += 1;
    if (this.depth > MAX_NESTING_DEPTH) throw new CalculatorError(`nesting deeper than ${MAX_NESTING_DEPTH} levels`, pos);
  }

  private additive(): ArithmeticNode {
    let left = this.multiplicative();
    while (this.isOp('+', '-')) {
      const op = this.next() as Extract<Token, { kind: 'op' }>;
      const right = this.multiplicative();
      left = { kind: 'binary', op: op.text as '+' | '-', left, right, pos: op.pos };
    }
    return left;
  }

  private multiplicative(): ArithmeticNode {
    let left = this.unary();
    while (this.isOp('*', '/', '%')) {
      const op = this.next() as Extract<Token, { kind: 'op' }>;
      const right = this.unary();
      left = { kind: 'binary', op: op.text as '*' | '/' | '%', left, right, pos: op.pos };
    }
    return left;
  }

  private unary(): ArithmeticNode {
    if (this.isOp('-', '+')) {
      const op = this.next() as Extract<Token, { kind: 'op' }>;
      this.enter(op.pos);
      const operand = this.unary();
      this.depth -= 1;
      return { kind: 'unary', op: op.text as '-' | '+', operand, pos: op.pos };
    }
    return this.power();
  }

  private power(): ArithmeticNode {
    const base = this.primary();
    if (!this.isOp('^')) return base;
    const op = this.next();
    this.enter(op.pos);
    const exponent = this.unary();
    this.depth -= 1;
    return { kind: 'binary', op: '^', left: base, right: exponent, pos: op.pos };
  }

  private primary(): ArithmeticNode {
    const token = this.next();
    if (token.kind === 'number') return { kind: 'number', value: token.value, pos: token.pos };
    if (token.kind === 'op' && token.text === '(') {
      this.enter(token.pos);
      const inner = this.additive();
      this.expect(')');
      this.depth -= 1;
      return inner;
    }
    if (token.kind === 'name') return this.name(token);
    throw new CalculatorError(`unexpected ${describe(token)}`, token.pos);
  }

  private name(token: Extract<Token, { kind: 'name' }>): ArithmeticNode {
    const key = token.text.toLowerCase();
    if (!this.isOp('(')) {
      const value = CONSTANTS[key];
      if (value === undefined) {
        const hint = FUNCTIONS[key] ? `${key} is a function: write ${key}(...)` : `the constants are ${CONSTANT_NAMES.join(', ')}`;
        throw new CalculatorError(`unknown name ${JSON.stringify(token.text)}`, token.pos, hint);
      }
      return { kind: 'number', value, pos: token.pos };
    }
    const fn = FUNCTIONS[key];
    if (!fn) {
      throw new CalculatorError(
        `unknown function ${JSON.stringify(token.text)}`,
        token.pos,
        `the functions are ${FUNCTION_NAMES.join(', ')}`,
      );
    }
    this.expect('(');
    this.enter(token.pos);
    const args: ArithmeticNode[] = [];
    if (!this.isOp(')')) {
      args.push(this.additive());
      while (this.isOp(',')) {
        this.next();
        args.push(this.additive());
      }
    }
    this.expect(')');
    this.depth -= 1;
    const [min, max] = fn.arity;
    if (args.length < min || args.length > max) {
      const expected = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
      const noun = max === 1 || (min === 1 && max === Infinity) ? 'argument' : 'arguments';
      throw new CalculatorError(`${key}() takes ${expected} ${noun}, got ${args.length}`, token.pos);
    }
    return { kind: 'call', name: key, args, pos: token.pos };
  }
}

/**
 * Parses an expression into its syntax tree.
 * @throws {CalculatorError} on input that is too long, malformed, too deeply nested or
 * names an unknown function or constant.
 */
export function parseArithmetic(input: string): ArithmeticNode {
  if (input.length > MAX_EXPRESSION_LENGTH) {
    throw new CalculatorError(`expression is ${input.length} characters long; the limit is ${MAX_EXPRESSION_LENGTH}`);
  }
  return new Parser(tokenize(input)).parse();
}

function evaluateNode(node: ArithmeticNode): number {
  switch (node.kind) {
    case 'number':
      return node.value;
    case 'unary': {
      const value = evaluateNode(node.operand);
      return node.op === '-' ? -value : value;
    }
    case 'call':
      // The parser only builds calls to known functions.
      return (FUNCTIONS[node.name] as MathFunction).apply(node.args.map(evaluateNode), node.pos);
    case 'binary': {
      const left = evaluateNode(node.left);
      const right = evaluateNode(node.right);
      switch (node.op) {
        case '+':
          return left + right;
        case '-':
          return left - right;
        case '*':
          return left * right;
        case '/':
          if (right === 0) throw new CalculatorError('division by zero', node.pos);
          return left / right;
        case '%':
          if (right === 0) throw new CalculatorError('modulo by zero', node.pos);
          return left % right;
        case '^':
          return raise(left, right, node.pos);
      }
    }
  }
}

/**
 * Evaluates an arithmetic expression to a finite number.
 * @throws {CalculatorError} for any invalid input, math domain error (division by zero,
 * sqrt of a negative number…) or a result too large to represent.
 */
export function evaluateArithmetic(input: string): number {
  const value = evaluateNode(parseArithmetic(input));
  if (!Number.isFinite(value)) throw new CalculatorError('result is too large to represent');
  return value;
}
