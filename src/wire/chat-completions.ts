// The OpenAI Chat Completions wire format: the request and response shapes every layer speaks (the
// harmony mapping, the server and the harness). Types only; requests arrive as untrusted JSON, so
// whoever reads one checks every field it uses (see harmony/chat-to-harmony.ts).

export interface ChatTextPart {
  type: 'text';
  text: string;
}

export type ChatContent = string | ChatTextPart[];

export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatSystemMessage {
  role: 'system' | 'developer';
  content: ChatContent;
  name?: string;
}

export interface ChatUserMessage {
  role: 'user';
  content: ChatContent;
  name?: string;
}

export interface ChatAssistantMessage {
  role: 'assistant';
  content?: ChatContent | null;
  /** Chain of thought; `reasoning_content` and `thinking` are accepted aliases. */
  reasoning?: string | null;
  reasoning_content?: string | null;
  thinking?: string | null;
  tool_calls?: ChatToolCall[];
  name?: string;
}

export interface ChatToolMessage {
  role: 'tool';
  content: ChatContent;
  tool_call_id?: string;
  /** Not in OpenAI's schema; some clients send the function name here. */
  name?: string;
}

export type ChatMessage = ChatSystemMessage | ChatUserMessage | ChatAssistantMessage | ChatToolMessage;

export interface ChatFunctionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}

export type ChatToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

export interface ChatRequest {
  model?: string;
  messages: ChatMessage[];
  tools?: ChatFunctionTool[];
  tool_choice?: ChatToolChoice;
  reasoning_effort?: 'low' | 'medium' | 'high';
  [field: string]: unknown;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

/** The assistant message of a non-streamed response (`choices[i].message`). */
export interface ChatResponseMessage {
  role: 'assistant';
  content: string | null;
  reasoning?: string;
  tool_calls?: ChatToolCall[];
}

/** One `choices[i].delta` of a streamed response. */
export interface ChatDelta {
  role?: 'assistant';
  content?: string;
  reasoning?: string;
  tool_calls?: Array<{
    index: number;
    id?: string;
    type?: 'function';
    function: { name?: string; arguments: string };
  }>;
}
