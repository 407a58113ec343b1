// The calculator tool's evaluator: a recursive-descent parser for simple arithmetic (no eval).
//
//   expression := term (("+" | "-") term)*
//   term       := factor (("*" | "/") factor)*
//   factor     := ("+" | "-") factor | number | "(" expression ")"
//   number     := digits ["." digits]
//
// Spaces are allowed between tokens. Anything else (letters, `**`, `%`, empty input, unbalanced
// parentheses, division by zero, a result too large to print as plain digits) is an ArithmeticError.

export class ArithmeticError extends Error {
  override name = 'ArithmeticError';
}

/** Results are printed rounded to this many decimals, trailing zeros dropped: 7/3 → "2.3333". */
export const RESULT_DECIMALS = 4;

/** Evaluates an arithmetic expression; throws ArithmeticError on anything it does not accept. */
export function evaluateArithmetic(expression: string): number {
  const parser = new Parser(expression);
  const value = parser.expression();
  parser.skipSpaces();
  if (!parser.atEnd()) throw new ArithmeticError(`unexpected '${parser.peek()}' at ${parser.position}`);
  if (!Number.isFinite(value)) throw new ArithmeticError('the result is not a finite number');
  return value;
}

/** A number as the calculator prints it: at most RESULT_DECIMALS decimals, no exponent, no "-0". */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value) || Math.abs(value) >= 1e15) throw new ArithmeticError(`${value} is too large to print`);
  const rounded = Number(value.toFixed(RESULT_DECIMALS));
  return Object.is(rounded, -0) ? '0' : String(rounded);
}

/** The calculator's answer text for an expression: `formatNumber(evaluateArithmetic(expression))`. */
export function calculate(expression: string): string {
  return formatNumber(evaluateArithmetic(expression));
}

class Parser {
  position = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.position >= this.text.length;
  }

  peek(): string {
    return this.text[this.position] ?? '';
  }

  skipSpaces(): void {
    while (this.peek() === ' ') this.position++;
  }

  expression(): number {
    let value = this.term();
    for (;;) {
      this.skipSpaces();
      const op = this.peek();
      if (op !== '+' && op !== '-') return value;
      this.position++;
      const right = this.term();
      value = op === '+' ? value + right : value - right;
    }
  }

  private term(): number {
    let value = this.factor();
    for (;;) {
      this.skipSpaces();
      const op = this.peek();
      if (op !== '*' && op !== '/') return value;
      this.position++;
      const right = this.factor();
      if (op === '/' && right === 0) throw new ArithmeticError('division by zero');
      value = op === '*' ? value * right : value / right;
    }
  }

  private factor(): number {
    this.skipSpaces();
    const c = this.peek();
    if (c === '-' || c === '+') {
      this.position++;
      const value = this.factor();
      return c === '-' ? -value : value;
    }
    if (c === '(') {
      this.position++;
      const value = this.expression();
      this.skipSpaces();
      if (this.peek() !== ')') throw new ArithmeticError(`expected ')' at ${this.position}`);
      this.position++;
      return value;
    }
    return this.number();
  }

  private number(): number {
    const match = /^\d+(?:\.\d+)?/.exec(this.text.slice(this.position));
    if (match === null) throw new ArithmeticError(this.atEnd() ? 'unexpected end of expression' : `unexpected '${this.peek()}' at ${this.position}`);
    this.position += match[0].length;
    return Number(match[0]);
  }
}
