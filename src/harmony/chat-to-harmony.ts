// OpenAI chat request → harmony conversation → completion prompt. Every rule is stated in
// spec/harmony.md ("OpenAI chat → harmony"); the request is untrusted JSON, so each field used is
// checked and a bad one raises ChatMappingError naming it (the server answers 400 with it).
import type { ChatRequest } from '../wire/chat-completions.ts';
import { renderCompletionPieces, rendered, type Rendered } from './render.ts';
import { defaultSystemContent, type DeveloperContent, type Message, type ReasoningEffort, type SystemContent, type ToolDescription } from './conversation.ts';
import { jsonLimitViolation, paramPath, SCHEMA_LIMITS, SchemaLimitError } from './schema-to-typescript.ts';

export class ChatMappingError extends Error {
  override name = 'ChatMappingError';
  constructor(
    message: string,
    /** The request field at fault, in OpenAI's dotted/indexed form, e.g. `messages[2].tool_call_id`. */
    readonly param: string,
    readonly code: string = 'invalid_value',
  ) {
    super(message);
  }
}

export interface MappingOptions {
  /** `Current date:` in the system message; left out when not configured (never today's date). */
  currentDate?: string;
  modelIdentity?: string;
  knowledgeCutoff?: string;
  /**
   * Failpoint sticky-reasoning-effort: one system message shared by every request (the server's
   * defaults object), into which a request writes only the options it gives. Absent: a fresh one.
   */
  sharedSystem?: SystemContent;
}

/** OpenAI's rule for function names; it also keeps harmony headers parseable (no spaces). */
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const EFFORTS: Record<string, ReasoningEffort> = { low: 'Low', medium: 'Medium', high: 'High' };
const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'];
/** A leading `<think>…</think>` block, as exo-style clients send reasoning back in `content`. */
const THINK_BLOCK = /^\s*<think>([\s\S]*?)<\/think>\s*/;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(message: string, param: string, code?: string): never {
  throw new ChatMappingError(message, param, code);
}

/** Message content: a string, or an array of text parts (concatenated). Other part types are refused. */
function contentText(content: unknown, param: string, allowNull: boolean): string | null {
  if (content == null) {
    if (allowNull) return null;
    fail(`${param} is required`, param, 'missing_required_parameter');
  }
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) fail(`${param} must be a string or an array of text parts`, param, 'invalid_type');
  return content
    .map((part, j) => {
      const where = `${param}[${j}]`;
      if (!isObject(part)) fail(`${where} must be an object`, where, 'invalid_type');
      if (part.type !== 'text') {
        fail(`${where}.type '${String(part.type)}' is not supported: gpt-oss takes only 'text' content parts`, `${where}.type`, 'unsupported_content_part');
      }
      if (typeof part.text !== 'string') fail(`${where}.text must be a string`, `${where}.text`, 'invalid_type');
      return part.text;
    })
    .join('');
}

function optionalString(v: unknown, param: string): string | undefined {
  if (v == null) return undefined;
  if (typeof v !== 'string') fail(`${param} must be a string`, param, 'invalid_type');
  return v;
}

function readTools(tools: unknown): ToolDescription[] {
  if (tools == null) return [];
  if (!Array.isArray(tools)) fail('tools must be an array', 'tools', 'invalid_type');
  const seen = new Set<string>();
  return tools.map((tool, i) => {
    const at = `tools[${i}]`;
    if (!isObject(tool) || tool.type !== 'function' || !isObject(tool.function)) {
      fail(`${at} must be {"type":"function","function":{...}}`, at, 'invalid_type');
    }
    const fn = tool.function as Json;
    if (typeof fn.name !== 'string' || !TOOL_NAME.test(fn.name)) {
      fail(`${at}.function.name must match ${TOOL_NAME.source}`, `${at}.function.name`);
    }
    if (seen.has(fn.name)) fail(`${at}.function.name '${fn.name}' is declared twice`, `${at}.function.name`);
    seen.add(fn.name);
    if (fn.parameters != null && !isObject(fn.parameters)) {
      fail(`${at}.function.parameters must be a JSON Schema object`, `${at}.function.parameters`, 'invalid_type');
    }
    // Checked here, before rendering, so the error names the place (the renderer only refuses).
    const over = fn.parameters == null ? null : jsonLimitViolation(fn.parameters, SCHEMA_LIMITS);
    if (over !== null) {
      const where = paramPath(`${at}.function.parameters`, over.path);
      fail(
        `${at}.function.parameters: ${new SchemaLimitError(over).message} (at ${where})`,
        where,
        over.limit === 'depth' ? 'schema_too_deep' : 'schema_too_large',
      );
    }
    return {
      name: fn.name,
      description: optionalString(fn.description, `${at}.function.description`) ?? '',
      parameters: (fn.parameters as Json | undefined) ?? null,
    };
  });
}

/** Reasoning of an earlier assistant turn: `reasoning`, `reasoning_content` or `thinking`, first set wins. */
function assistantReasoning(m: Json, at: string): string | undefined {
  for (const field of ['reasoning', 'reasoning_content', 'thinking']) {
    const value = optionalString(m[field], `${at}.${field}`);
    if (value) return value;
  }
  return undefined;
}

function assistantMessages(m: Json, at: string, declared: ReadonlySet<string>, callNames: Map<string, string>): Message[] {
  let content = contentText(m.content, `${at}.content`, true);
  let reasoning = assistantReasoning(m, at);
  const think = content === null ? null : THINK_BLOCK.exec(content);
  if (think) {
    content = content!.slice(think[0].length);
    reasoning ??= think[1]!.trim() || undefined;
  }
  const calls = m.tool_calls ?? [];
  if (!Array.isArray(calls)) fail(`${at}.tool_calls must be an array`, `${at}.tool_calls`, 'invalid_type');

  const out: Message[] = [];
  if (reasoning) out.push({ role: 'assistant', channel: 'analysis', content: [{ type: 'text', text: reasoning }] });
  if (calls.length === 0) {
    if (content === null) fail(`${at} needs content or tool_calls`, `${at}.content`, 'missing_required_parameter');
    out.push({ role: 'assistant', channel: 'final', content: [{ type: 'text', text: content }] });
    return out;
  }
  // With tool calls, visible content is a commentary preamble, emitted before the calls.
  if (content) out.push({ role: 'assistant', channel: 'commentary', content: [{ type: 'text', text: content }] });
  calls.forEach((call, j) => {
    const c = `${at}.tool_calls[${j}]`;
    if (!isObject(call) || call.type !== 'function' || !isObject(call.function)) {
      fail(`${c} must be {"id":…,"type":"function","function":{…}}`, c, 'invalid_type');
    }
    const id = optionalString(call.id, `${c}.id`);
    if (id === undefined) fail(`${c}.id is required`, `${c}.id`, 'missing_required_parameter');
    const fn = call.function as Json;
    if (typeof fn.name !== 'string') fail(`${c}.function.name must be a string`, `${c}.function.name`, 'invalid_type');
    if (!declared.has(fn.name)) {
      fail(`${c} calls '${fn.name}', which is not a function in tools`, `${c}.function.name`, 'unknown_function');
    }
    if (typeof fn.arguments !== 'string') {
      fail(`${c}.function.arguments must be a JSON string`, `${c}.function.arguments`, 'invalid_type');
    }
    callNames.set(id, fn.name);
    // Arguments go in verbatim: re-encoding them is the double-encoding bug of template servers.
    out.push({
      role: 'assistant',
      channel: 'commentary',
      recipient: `functions.${fn.name}`,
      content_type: '<|constrain|>json',
      content: [{ type: 'text', text: fn.arguments }],
    });
  });
  return out;
}

function toolMessage(m: Json, at: string, callNames: ReadonlyMap<string, string>): Message {
  const id = optionalString(m.tool_call_id, `${at}.tool_call_id`);
  let name: string | undefined;
  if (id !== undefined) {
    name = callNames.get(id);
    if (name === undefined) {
      fail(`${at}.tool_call_id '${id}' matches no earlier assistant tool call`, `${at}.tool_call_id`, 'unknown_tool_call_id');
    }
  } else {
    name = optionalString(m.name, `${at}.name`);
    if (name === undefined) fail(`${at} needs a tool_call_id (or a name) to say which tool answered`, `${at}.tool_call_id`, 'missing_required_parameter');
  }
  return {
    role: 'tool',
    name: `functions.${name}`,
    recipient: 'assistant',
    channel: 'commentary',
    content: [{ type: 'text', text: contentText(m.content, `${at}.content`, false)! }],
  };
}

/** Cookbook rule: drop every analysis message before the last assistant `final`. */
function dropOldReasoning(messages: Message[]): Message[] {
  const lastFinal = messages.findLastIndex((m) => m.role === 'assistant' && m.channel === 'final');
  return messages.filter((m, i) => !(i < lastFinal && m.channel === 'analysis'));
}

/** The harmony conversation for a chat request (without the trailing `<|start|>assistant`). */
export function chatToHarmony(request: unknown, options: MappingOptions = {}): Message[] {
  if (!isObject(request)) fail('the request body must be a JSON object', 'body', 'invalid_type');
  const req = request as ChatRequest;
  if (!Array.isArray(req.messages) || req.messages.length === 0) {
    fail('messages must be a non-empty array', 'messages', req.messages == null ? 'missing_required_parameter' : 'invalid_value');
  }
  const effort = req.reasoning_effort ?? 'medium';
  if (typeof effort !== 'string' || !(effort in EFFORTS)) {
    fail(`reasoning_effort must be one of low, medium, high`, 'reasoning_effort');
  }
  const tools = readTools(req.tools);
  const declared = new Set(tools.map((t) => t.name));

  // Failpoint sticky-reasoning-effort: the shared system message keeps the last effort given.
  const system = options.sharedSystem ?? defaultSystemContent();
  if (options.sharedSystem === undefined || req.reasoning_effort != null) system.reasoning_effort = EFFORTS[effort]!;
  if (options.currentDate !== undefined) system.conversation_start_date = options.currentDate;
  if (options.modelIdentity !== undefined) system.model_identity = options.modelIdentity;
  if (options.knowledgeCutoff !== undefined) system.knowledge_cutoff = options.knowledgeCutoff;

  let instructions: string | undefined;
  const body: Message[] = [];
  const callNames = new Map<string, string>();
  req.messages.forEach((raw, i) => {
    const at = `messages[${i}]`;
    if (!isObject(raw)) fail(`${at} must be an object`, at, 'invalid_type');
    const m = raw as Json;
    if (typeof m.role !== 'string' || !ROLES.includes(m.role)) {
      fail(`${at}.role '${String(m.role)}' is not one of ${ROLES.join(', ')}`, `${at}.role`);
    }
    switch (m.role) {
      case 'system':
      case 'developer': {
        const text = contentText(m.content, `${at}.content`, false)!;
        // The first becomes the developer message's instructions; later ones stay where they are.
        if (instructions === undefined) instructions = text;
        else body.push({ role: 'developer', content: [{ type: 'developer_content', instructions: text }] });
        break;
      }
      case 'user':
        body.push({ role: 'user', content: [{ type: 'text', text: contentText(m.content, `${at}.content`, false)! }] });
        break;
      case 'assistant':
        body.push(...assistantMessages(m, at, declared, callNames));
        break;
      case 'tool':
        body.push(toolMessage(m, at, callNames));
        break;
    }
  });

  const conversation: Message[] = [{ role: 'system', content: [system] }];
  if (instructions !== undefined || tools.length > 0) {
    const developer: DeveloperContent = { type: 'developer_content' };
    if (instructions !== undefined) developer.instructions = instructions;
    if (tools.length > 0) developer.tools = { functions: { name: 'functions', description: null, tools } };
    conversation.push({ role: 'developer', content: [developer] });
  }
  return [...conversation, ...dropOldReasoning(body)];
}

/** The completion prompt for a chat request: text and token ids, ending `<|start|>assistant`. */
export function renderChatPrompt(request: unknown, options: MappingOptions = {}): Rendered {
  return rendered(renderCompletionPieces(chatToHarmony(request, options), 'assistant'));
}
