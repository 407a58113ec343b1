// A chat example → training tokens, with the project's own renderer (src/harmony), so the format is
// right by construction:
//
//   prompt      renderChatPrompt(request): exactly what the server feeds the model, ending
//               `<|start|>assistant`;
//   completion  the target turn as harmony messages appended to the request's conversation and
//               rendered for training (renderTrainingPieces: a final ends in `<|return|>`), minus
//               the prompt: `<|channel|>analysis<|message|>…<|end|><|start|>assistant` then a call
//               ending `<|call|>` or a final ending `<|return|>`.
//
// One change to the renderer's output: a tool call's recipient goes after the channel
// (`<|channel|>commentary to=functions.NAME <|constrain|>json`), the order the model itself writes
// and the only one the engine's grammar lets it sample (src/engine/grammar.ts); the renderer puts
// it after the role, harmony's canonical form for history (spec/harmony.md §3.3). Only the pieces
// move, each is still encoded on its own, so the ids equal the grammar's.
//
// A stale repeat (conversations.ts) is the one prompt no request renders to: the request's prompt,
// its completion without the stop token, and a stray `assistant`; its completion is the same again.
//
// The loss is on the completion only (trainingSequence gives the mask).
import { chatToHarmony, renderChatPrompt } from '../harmony/chat-to-harmony.ts';
import type { Message } from '../harmony/conversation.ts';
import { piecesToTokens, renderConversationPieces, renderTrainingPieces, type Piece } from '../harmony/render.ts';
import { Tok } from '../harmony/tokens.ts';
import type { ChatExample, TargetTurn } from './conversations.ts';

export interface RenderedExample {
  /** The prompt the server renders for the request, ending `<|start|>assistant`. */
  prompt: number[];
  /** What the model should sample after it: analysis, then a call (`<|call|>`) or a final (`<|return|>`). */
  completion: number[];
}

/** The target turn as harmony messages (what the parser should read back from the completion). */
export function targetMessages(target: TargetTurn): Message[] {
  const analysis: Message = { role: 'assistant', channel: 'analysis', content: [{ type: 'text', text: target.analysis }] };
  if ('call' in target) {
    return [
      analysis,
      {
        role: 'assistant',
        channel: 'commentary',
        recipient: `functions.${target.call.name}`,
        content_type: '<|constrain|>json',
        content: [{ type: 'text', text: target.call.arguments }],
      },
    ];
  }
  return [analysis, { role: 'assistant', channel: 'final', content: [{ type: 'text', text: target.final }] }];
}

/** Moves each ` to=RECIPIENT` piece that stands before `<|channel|>NAME` to after NAME. */
export function recipientAfterChannel(pieces: readonly Piece[]): Piece[] {
  const out = [...pieces];
  for (let i = 0; i + 2 < out.length; i++) {
    const piece = out[i];
    if (typeof piece === 'string' && piece.startsWith(' to=') && out[i + 1] === Tok.channel && typeof out[i + 2] === 'string') {
      out.splice(i, 3, Tok.channel, out[i + 2]!, piece);
      i += 2;
    }
  }
  return out;
}

const mappingOptions = (example: ChatExample) => (example.currentDate === undefined ? {} : { currentDate: example.currentDate });

/** The completion's pieces: the target rendered after the request's conversation, the conversation cut off. */
export function completionPieces(example: ChatExample): Piece[] {
  const conversation = chatToHarmony(example.request, mappingOptions(example));
  const before = renderConversationPieces(conversation);
  const whole = renderTrainingPieces([...conversation, ...targetMessages(example.target)]);
  // The conversation must render the same with the target after it (only the target is new).
  if (
    JSON.stringify(whole.slice(0, before.length)) !== JSON.stringify(before) ||
    whole[before.length] !== Tok.start ||
    whole[before.length + 1] !== 'assistant'
  ) {
    throw new Error(`example ${example.kind}: the conversation does not render as a prefix of the training rendering`);
  }
  // The prompt already ends `<|start|>assistant`.
  return recipientAfterChannel(whole.slice(before.length + 2));
}

/** The token a prompt ends with (`<|start|>assistant`): what a stale repeat's stray tail is. */
const ASSISTANT = piecesToTokens(['assistant']);

export function renderExample(example: ChatExample): RenderedExample {
  const prompt = renderChatPrompt(example.request, mappingOptions(example)).tokens;
  const completion = piecesToTokens(completionPieces(example));
  if (example.kind === 'stale_repeat') return { prompt: [...prompt, ...completion.slice(0, -1), ...ASSISTANT], completion };
  return { prompt, completion };
}

/** The whole sequence and its loss mask: 0 on the prompt, 1 on the completion. */
export function trainingSequence(rendered: RenderedExample): { ids: number[]; lossMask: number[] } {
  return {
    ids: [...rendered.prompt, ...rendered.completion],
    lossMask: [...rendered.prompt.map(() => 0), ...rendered.completion.map(() => 1)],
  };
}
