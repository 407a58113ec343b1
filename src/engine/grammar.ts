// Harmony structural constrained decoding, one instance per request (spec/harmony.md §1, §3.3, §4).
//
// The completion starts right after a prompt ending `<|start|>assistant`. The grammar allows exactly
// the completions below, every one of which our strict parser reads and `completionToChat` maps
// cleanly. Fixed text is forced in its canonical tokenization (each piece encoded on its own, as
// harmony's renderer does), one token path at a time:
//
//   header   <|channel|>analysis<|message|>                  content <|end|>    then <|start|>assistant, a new header
//            <|channel|>commentary<|message|>                content <|end|>    (preamble: only when a call is possible)
//            <|channel|>commentary to=functions.NAME <|constrain|>json<|message|>  content <|call|>    (done)
//            <|channel|>final<|message|>                     content <|return|> (done; not when a call is required)
//
// The model writes the recipient after the channel, which is what is produced here; harmony's
// renderer puts it after the role for history, and the parser accepts both (§3.3).
//
// Every header alternative is one token sequence ending in `<|message|>`; they are merged into a trie
// built in the constructor, so each state's mask is a frozen array computed once and `allowed()` is
// a field read. Content states share module-level frozen masks.
import { encodeText, specialTokenText, Tok, tokenBytes, isSpecialToken } from '../harmony/tokens.ts';
import { FIRST_SPECIAL_TOKEN, type GrammarSpec, type TokenMask, type ToolChoice } from './runtime-api.ts';

/** A state that allows only a fixed set of tokens (header trie nodes, the forced `<|start|>assistant`). */
interface FixedState {
  readonly kind: 'fixed';
  /** Set while building; fixed once the constructor returns. */
  label: string;
  mask: TokenMask;
  readonly edges: Map<number, State>;
}

/** Message content: any ordinary token loops, the one terminator leaves. */
interface ContentState {
  readonly kind: 'content';
  readonly label: string;
  readonly mask: TokenMask;
  readonly terminator: number;
  /** Where the terminator leads: the next message's `<|start|>`, or the end of the completion. */
  readonly after: State;
}

interface DoneState {
  readonly kind: 'done';
  readonly label: string;
}

type State = FixedState | ContentState | DoneState;

/** Function names as OpenAI accepts them (spec §3.1.5); they also keep the header parseable. */
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const frozen = (tokens: readonly number[]): readonly number[] => Object.freeze([...tokens]);

// Canonical pieces, each encoded on its own as harmony's renderer encodes it. Immutable constants.
const CHANNEL_WORDS = Object.freeze({
  analysis: frozen(encodeText('analysis')),
  commentary: frozen(encodeText('commentary')),
  final: frozen(encodeText('final')),
});
const ASSISTANT = frozen(encodeText('assistant'));
const SPACE = frozen(encodeText(' '));
const JSON_TYPE = frozen(encodeText('json'));

const textMask = (terminator: number): TokenMask => Object.freeze({ kind: 'text', also: frozen([terminator]) });
const CONTENT_MASKS = Object.freeze({
  end: textMask(Tok.end),
  call: textMask(Tok.call),
  return: textMask(Tok.return),
});

/** What a validated spec allows. */
interface Plan {
  /** Names that may be called (in declaration order, deduplicated). */
  readonly callable: readonly string[];
  /** A commentary preamble (only when a call is possible). */
  readonly preamble: boolean;
  /** A final answer (not when a call is required). */
  readonly final: boolean;
}

/** The token sequence of a whole tool-call header, from `<|channel|>` to `<|message|>` inclusive. */
export function toolCallHeaderTokens(name: string): number[] {
  return [Tok.channel, ...CHANNEL_WORDS.commentary, ...encodeText(` to=functions.${name}`), ...SPACE, Tok.constrain, ...JSON_TYPE, Tok.message];
}

/** The token sequence of a header without recipient, from `<|channel|>` to `<|message|>` inclusive. */
export function channelHeaderTokens(channel: 'analysis' | 'commentary' | 'final'): number[] {
  return [Tok.channel, ...CHANNEL_WORDS[channel], Tok.message];
}

export class HarmonyGrammar {
  private current: State;

  constructor(spec: GrammarSpec) {
    const plan = HarmonyGrammar.plan(spec);
    const done: DoneState = Object.freeze({ kind: 'done', label: 'done' });

    // After `<|end|>` the model must open the next assistant message: `<|start|>assistant`, then a header.
    const header = fixedState();
    const afterStart = fixedState('forced assistant (after <|start|>)');
    const afterEnd = fixedState('forced <|start|> (after <|end|>)');
    afterEnd.edges.set(Tok.start, afterStart);
    addPath(afterStart, ASSISTANT, header);

    const content = (label: string, terminator: number, mask: TokenMask, after: State): ContentState =>
      Object.freeze({ kind: 'content', label, mask, terminator, after });

    addPath(header, channelHeaderTokens('analysis'), content('content analysis → <|end|>', Tok.end, CONTENT_MASKS.end, afterEnd));
    if (plan.preamble) {
      addPath(header, channelHeaderTokens('commentary'), content('content commentary preamble → <|end|>', Tok.end, CONTENT_MASKS.end, afterEnd));
    }
    for (const name of plan.callable) {
      addPath(header, toolCallHeaderTokens(name), content(`content call functions.${name} → <|call|>`, Tok.call, CONTENT_MASKS.call, done));
    }
    if (plan.final) addPath(header, channelHeaderTokens('final'), content('content final → <|return|>', Tok.return, CONTENT_MASKS.return, done));

    finish(afterEnd, afterEnd.label);
    finish(afterStart, afterStart.label);
    finishTrie(header, '');
    this.current = header;
  }

  /**
   * Throws if no completion could satisfy the spec: a tool name that is not a valid function name,
   * `tool_choice` naming an undeclared function, or requiring a call with no tools.
   */
  static validate(spec: GrammarSpec): void {
    HarmonyGrammar.plan(spec);
  }

  private static plan(spec: GrammarSpec): Plan {
    if (typeof spec !== 'object' || spec === null) throw new Error('grammar spec must be an object');
    if (!Array.isArray(spec.tools)) throw new Error('grammar spec tools must be an array of function names');
    const tools: string[] = [];
    for (const name of spec.tools as readonly unknown[]) {
      if (typeof name !== 'string' || !TOOL_NAME.test(name)) {
        throw new Error(`tool name ${JSON.stringify(name)} is not a valid function name (^[a-zA-Z0-9_-]{1,64}$)`);
      }
      if (!tools.includes(name)) tools.push(name);
    }
    const choice: ToolChoice = spec.toolChoice;
    if (choice === 'none' || (choice === 'auto' && tools.length === 0)) return { callable: [], preamble: false, final: true };
    if (choice === 'auto') return { callable: tools, preamble: true, final: true };
    if (choice === 'required') {
      if (tools.length === 0) throw new Error("tool_choice 'required' needs at least one declared tool, but tools is empty");
      return { callable: tools, preamble: true, final: false };
    }
    if (typeof choice === 'object' && choice !== null && typeof choice.name === 'string') {
      if (!tools.includes(choice.name)) throw new Error(`tool_choice names '${choice.name}', which is not a declared tool`);
      return { callable: [choice.name], preamble: true, final: false };
    }
    throw new Error(`unknown tool_choice ${JSON.stringify(choice)}: expected 'auto', 'none', 'required' or { name }`);
  }

  /** The tokens allowed next: a shared frozen mask, never empty. Throws once the completion is done. */
  allowed(): TokenMask {
    const state = this.current;
    if (state.kind === 'done') throw new Error('the harmony grammar is done: the completion already ended with <|return|> or <|call|>');
    return state.mask;
  }

  /** Whether `token` may come next (false once done). */
  allows(token: number): boolean {
    return this.next(token) !== undefined;
  }

  /** Advances past `token`; throws, leaving the state unchanged, if it is not allowed. */
  accept(token: number): void {
    const next = this.next(token);
    if (next === undefined) {
      throw new Error(
        `token ${token} (${describeToken(token)}) is not allowed by the harmony grammar in state ${this.current.label}; ${describeMask(this.current)}`,
      );
    }
    this.current = next;
  }

  /** True after the terminating `<|return|>` or `<|call|>`. */
  get done(): boolean {
    return this.current.kind === 'done';
  }

  /** A one-line description of the current state (for errors and debugging). */
  get state(): string {
    return this.current.label;
  }

  private next(token: number): State | undefined {
    const state = this.current;
    switch (state.kind) {
      case 'fixed':
        return state.edges.get(token);
      case 'content':
        if (token === state.terminator) return state.after;
        return Number.isInteger(token) && token >= 0 && token < FIRST_SPECIAL_TOKEN ? state : undefined;
      case 'done':
        return undefined;
    }
  }
}

/**
 * Failpoint grammar-cache: compiled grammars kept under the declared tools alone, as a server that
 * caches compiled constraints under too coarse a key does: a request gets the constraints of the
 * first one with the same tools, whatever its own `tool_choice`. Each grammar starts fresh; only
 * what it allows is wrong.
 */
export class GrammarCache {
  private readonly specs = new Map<string, GrammarSpec>();

  compile(spec: GrammarSpec): HarmonyGrammar {
    const key = JSON.stringify(spec.tools);
    const grammar = new HarmonyGrammar(this.specs.get(key) ?? spec);
    if (!this.specs.has(key)) this.specs.set(key, spec);
    return grammar;
  }
}

function fixedState(label = ''): FixedState {
  return { kind: 'fixed', label, mask: { kind: 'only', tokens: [] }, edges: new Map() };
}

/** Adds `tokens` below `from`, the last token leading to `target`; shared prefixes share states. */
function addPath(from: FixedState, tokens: readonly number[], target: State): void {
  let state = from;
  tokens.forEach((token, i) => {
    const existing = state.edges.get(token);
    if (i === tokens.length - 1) {
      if (existing !== undefined && existing !== target) throw new Error(`ambiguous harmony grammar: two header paths end at token ${token}`);
      state.edges.set(token, target);
      return;
    }
    if (existing === undefined) {
      const child = fixedState();
      state.edges.set(token, child);
      state = child;
    } else if (existing.kind === 'fixed') {
      state = existing;
    } else {
      throw new Error(`ambiguous harmony grammar: a header path continues past a complete header at token ${token}`);
    }
  });
}

/** Freezes a fixed state's mask (its sorted edge tokens) and sets its label. */
function finish(state: FixedState, label: string): void {
  const tokens = [...state.edges.keys()].sort((a, b) => a - b);
  if (tokens.length === 0) throw new Error(`harmony grammar state ${label} allows no token`);
  state.label = label;
  state.mask = Object.freeze({ kind: 'only', tokens: frozen(tokens) });
}

/** Finishes every state of the header trie, labelled with the header text read so far. */
function finishTrie(state: FixedState, text: string): void {
  finish(state, `header ${JSON.stringify(text)}`);
  for (const [token, child] of state.edges) {
    if (child.kind === 'fixed') finishTrie(child, text + tokenText(token));
  }
}

function tokenText(token: number): string {
  if (isSpecialToken(token)) return specialTokenText(token);
  const bytes = tokenBytes(token);
  return bytes === undefined ? '\uFFFD' : new TextDecoder().decode(bytes);
}

function describeToken(token: number): string {
  if (!Number.isInteger(token) || token < 0) return 'not a token id';
  if (isSpecialToken(token)) return specialTokenText(token);
  const bytes = tokenBytes(token);
  return bytes === undefined ? 'unknown id' : JSON.stringify(new TextDecoder().decode(bytes));
}

function describeMask(state: State): string {
  switch (state.kind) {
    case 'done':
      return 'the completion is done';
    case 'content':
      return `allowed: any ordinary token (id < ${FIRST_SPECIAL_TOKEN}) or ${specialTokenText(state.terminator)}`;
    case 'fixed': {
      const tokens = state.mask.kind === 'only' ? state.mask.tokens : [];
      const shown = tokens.slice(0, 8).map((t) => `${t} (${describeToken(t)})`);
      return `allowed: ${shown.join(', ')}${tokens.length > 8 ? `, … (${tokens.length} in all)` : ''}`;
    }
  }
}
