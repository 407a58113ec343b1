// Harmony renderer: conversation → pieces (text or formatting token) → text and token ids.
// Exactly openai/harmony v0.0.8's rules (spec/harmony.md "Rendering"). Each text piece is encoded on
// its own, as harmony's `render_text_into` does, so token boundaries match the library's.
import { jsonSchemaToTypeScript } from './schema-to-typescript.ts';
import { encodeText, specialTokenText, Tok } from './tokens.ts';
import type { Content, DeveloperContent, Message, Role, SystemContent, ToolNamespaceConfig } from './conversation.ts';

/** A rendered piece: text encoded as plain text, or a formatting token inserted by id. */
export type Piece = string | number;

export interface RenderConfig {
  /**
   * harmony's `auto_drop_analysis`: when the last assistant message is on `final`, drop analysis
   * messages before the first `final`. Off by default (harmony's Rust API with `config = None`).
   */
  autoDropAnalysis?: boolean;
}

export interface Rendered {
  text: string;
  tokens: number[];
}

export class HarmonyRenderError extends Error {
  override name = 'HarmonyRenderError';
}

/** Rust's `str::lines()`: split on `\n`, strip one trailing `\r`, no final empty line. */
function rustLines(s: string): string[] {
  if (s === '') return [];
  const lines = s.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Namespaces in harmony's BTreeMap order: byte order of the UTF-8 names. */
function sortedNamespaces(tools: Record<string, ToolNamespaceConfig>): ToolNamespaceConfig[] {
  return Object.keys(tools)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((k) => tools[k]!);
}

function renderNamespace(ns: ToolNamespaceConfig): string {
  const lines = [`## ${ns.name}\n`];
  const hasTools = ns.tools.length > 0;
  // A namespace with tools gets a commented description; one without (python) a plain one.
  for (const line of rustLines(ns.description ?? '')) lines.push(hasTools ? `// ${line}` : line);
  if (hasTools) {
    lines.push(`namespace ${ns.name} {\n`);
    for (const tool of ns.tools) {
      for (const line of rustLines(tool.description)) lines.push(`// ${line}`);
      lines.push(
        tool.parameters == null ? `type ${tool.name} = () => any;\n` : `type ${tool.name} = (_: ${jsonSchemaToTypeScript(tool.parameters, '')}) => any;\n`,
      );
    }
    lines.push(`} // namespace ${ns.name}`);
  }
  return lines.join('\n');
}

function renderToolsSection(tools: Record<string, ToolNamespaceConfig>): string {
  return ['# Tools', ...sortedNamespaces(tools).map(renderNamespace)].join('\n\n');
}

const EFFORT_TEXT = { Low: 'low', Medium: 'medium', High: 'high' } as const;

function renderSystemContent(sys: SystemContent, hasFunctionTools: boolean): string {
  const sections: string[] = [];
  const top: string[] = [];
  if (sys.model_identity != null) top.push(sys.model_identity);
  if (sys.knowledge_cutoff != null) top.push(`Knowledge cutoff: ${sys.knowledge_cutoff}`);
  if (sys.conversation_start_date != null) top.push(`Current date: ${sys.conversation_start_date}`);
  if (top.length > 0) sections.push(top.join('\n'));
  if (sys.reasoning_effort != null) sections.push(`Reasoning: ${EFFORT_TEXT[sys.reasoning_effort]}`);
  if (sys.tools != null && Object.keys(sys.tools).length > 0) sections.push(renderToolsSection(sys.tools));
  const channels = sys.channel_config;
  if (channels != null && channels.valid_channels.length > 0) {
    let header = `# Valid channels: ${channels.valid_channels.join(', ')}.`;
    if (channels.channel_required) header += ' Channel must be included for every message.';
    // Computed over the whole conversation: any developer message declaring `functions` tools.
    if (hasFunctionTools) header += "\nCalls to these tools must go to the commentary channel: 'functions'.";
    sections.push(header);
  }
  return sections.join('\n\n');
}

function renderDeveloperContent(dev: DeveloperContent): string {
  const sections: string[] = [];
  if (dev.instructions != null) sections.push('# Instructions', dev.instructions);
  if (dev.tools != null && Object.keys(dev.tools).length > 0) sections.push(renderToolsSection(dev.tools));
  return sections.join('\n\n');
}

function renderContent(content: Content, role: Role, hasFunctionTools: boolean): string {
  switch (content.type) {
    case 'text':
      return content.text;
    case 'system_content':
      if (role !== 'system') throw new HarmonyRenderError(`SystemContent may only appear in system messages, found in ${role}`);
      return renderSystemContent(content, hasFunctionTools);
    case 'developer_content':
      if (role !== 'developer') throw new HarmonyRenderError(`DeveloperContent may only appear in developer messages, found in ${role}`);
      return renderDeveloperContent(content);
  }
}

/** One message, `<|start|>` … `<|end|>` (or `<|call|>` for an assistant message with a recipient). */
export function renderMessage(message: Message, hasFunctionTools = false): Piece[] {
  const pieces: Piece[] = [Tok.start];
  if (message.role === 'tool') {
    // A tool's author is only its name (e.g. `functions.get_weather`); the word "tool" never appears.
    if (!message.name) throw new HarmonyRenderError('a tool message needs an author name');
    pieces.push(message.name);
  } else {
    pieces.push(message.role);
    if (message.name != null) pieces.push(`:${message.name}`);
  }
  if (message.recipient != null && message.recipient !== 'all') pieces.push(` to=${message.recipient}`);
  if (message.channel != null) pieces.push(Tok.channel, message.channel);
  if (message.content_type != null) {
    const constrain = specialTokenText(Tok.constrain);
    if (message.content_type.startsWith(constrain)) {
      pieces.push(' ', Tok.constrain);
      const rest = message.content_type.slice(constrain.length);
      if (rest !== '') pieces.push(rest);
    } else {
      pieces.push(` ${message.content_type}`);
    }
  }
  pieces.push(Tok.message);
  for (const content of message.content) pieces.push(renderContent(content, message.role, hasFunctionTools));
  pieces.push(message.role === 'assistant' && message.recipient != null ? Tok.call : Tok.end);
  return pieces;
}

function hasFunctionTools(messages: readonly Message[]): boolean {
  return messages.some((m) => m.content.some((c) => c.type === 'developer_content' && (c.tools?.['functions']?.tools.length ?? 0) > 0));
}

/** harmony's analysis dropping: only when the last assistant message is `final`, only before the first `final`. */
function harmonyAutoDrop(messages: readonly Message[]): Message[] {
  const lastAssistant = messages.findLast((m) => m.role === 'assistant');
  if (lastAssistant?.channel !== 'final') return [...messages];
  const firstFinal = messages.findIndex((m) => m.channel === 'final');
  return messages.filter((m, i) => !(i < firstFinal && m.channel === 'analysis'));
}

export function renderConversationPieces(messages: readonly Message[], config: RenderConfig = {}): Piece[] {
  const kept = config.autoDropAnalysis ? harmonyAutoDrop(messages) : messages;
  const functions = hasFunctionTools(messages);
  return kept.flatMap((m) => renderMessage(m, functions));
}

/** The prompt for sampling the next turn: the conversation, then `<|start|>{role}`. */
export function renderCompletionPieces(messages: readonly Message[], nextRole: Role = 'assistant', config: RenderConfig = {}): Piece[] {
  return [...renderConversationPieces(messages, config), Tok.start, nextRole];
}

/**
 * Failpoint render-cache: completion prompts remembered by the conversation's turns alone. The
 * system and developer messages (reasoning effort, instructions, tools) are not part of the key, as
 * in a server that caches its chat template's output by the messages and forgets that the tools and
 * options are rendered too: a request gets the prompt of an earlier one with the same turns.
 */
export class RenderMemo {
  private readonly prompts = new Map<string, Piece[]>();

  constructor(private readonly capacity = 256) {}

  completionPieces(messages: readonly Message[], nextRole: Role = 'assistant'): Piece[] {
    const turns = messages.filter((m) => m.role !== 'system' && m.role !== 'developer');
    const key = JSON.stringify([nextRole, turns]);
    const known = this.prompts.get(key);
    if (known !== undefined) return known;
    const pieces = renderCompletionPieces(messages, nextRole);
    if (this.prompts.size >= this.capacity) this.prompts.delete(this.prompts.keys().next().value!);
    this.prompts.set(key, pieces);
    return pieces;
  }
}

/** Training form: a trailing assistant `final` ends in `<|return|>` instead of `<|end|>`. */
export function renderTrainingPieces(messages: readonly Message[], config: RenderConfig = {}): Piece[] {
  const pieces = renderConversationPieces(messages, config);
  const last = messages.at(-1);
  if (last?.role === 'assistant' && last.channel === 'final') pieces[pieces.length - 1] = Tok.return;
  return pieces;
}

export function piecesToText(pieces: readonly Piece[]): string {
  return pieces.map((p) => (typeof p === 'number' ? specialTokenText(p) : p)).join('');
}

export function piecesToTokens(pieces: readonly Piece[]): number[] {
  const tokens: number[] = [];
  for (const p of pieces) {
    if (typeof p === 'number') tokens.push(p);
    else for (const t of encodeText(p)) tokens.push(t);
  }
  return tokens;
}

export function rendered(pieces: readonly Piece[]): Rendered {
  return { text: piecesToText(pieces), tokens: piecesToTokens(pieces) };
}
