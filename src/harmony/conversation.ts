// The harmony conversation model, in the shape of openai/harmony's serde JSON (the upstream
// fixtures load as-is): the author is flattened into `role` + `name`.

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';
export type ReasoningEffort = 'Low' | 'Medium' | 'High';

/** A JSON Schema object as it arrives in a request (property order preserved). */
export type JsonSchema = { [key: string]: unknown };

export interface ToolDescription {
  name: string;
  description: string;
  parameters?: JsonSchema | null;
}

export interface ToolNamespaceConfig {
  name: string;
  description?: string | null;
  tools: ToolDescription[];
}

export interface ChannelConfig {
  valid_channels: string[];
  channel_required: boolean;
}

export interface TextContent {
  type: 'text';
  text: string;
}

/** Fields left out are None in harmony: not rendered. */
export interface SystemContent {
  type: 'system_content';
  model_identity?: string | null;
  reasoning_effort?: ReasoningEffort | null;
  knowledge_cutoff?: string | null;
  conversation_start_date?: string | null;
  channel_config?: ChannelConfig | null;
  tools?: Record<string, ToolNamespaceConfig> | null;
}

export interface DeveloperContent {
  type: 'developer_content';
  instructions?: string | null;
  tools?: Record<string, ToolNamespaceConfig> | null;
}

export type Content = TextContent | SystemContent | DeveloperContent;

export interface Message {
  role: Role;
  /** The author's name; for `tool` messages the tool, e.g. `functions.get_weather`. */
  name?: string;
  content: Content[];
  channel?: string;
  recipient?: string;
  content_type?: string;
}

export const DEFAULT_MODEL_IDENTITY = 'You are ChatGPT, a large language model trained by OpenAI.';
export const DEFAULT_KNOWLEDGE_CUTOFF = '2024-06';

/** `SystemContent::new()` in harmony. */
export function defaultSystemContent(): SystemContent {
  return {
    type: 'system_content',
    model_identity: DEFAULT_MODEL_IDENTITY,
    reasoning_effort: 'Medium',
    knowledge_cutoff: DEFAULT_KNOWLEDGE_CUTOFF,
    channel_config: { valid_channels: ['analysis', 'commentary', 'final'], channel_required: true },
  };
}

/** The plain text of a message's text items. */
export function messageText(message: Message): string {
  return message.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}
