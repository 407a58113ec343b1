// Tool calls (spec/properties.md "Contract"; OpenAI: `tools` "a list of tools the model may call",
// `tool_choice`, `parallel_tool_calls`). Per successful choice, what the request allows:
//
// - every call names a function declared in `tools` (no tools: no calls) — a call to a function of
//   an earlier request is how tools sticking from one request to the next show;
// - `tool_choice: "none"`: no calls; `{type:"function", function:{name}}`: calls to that one only;
//   `"required"`: a choice that ended on its own (`stop`, no stop strings) has a call;
// - `parallel_tool_calls: false`: at most one call;
// - each call has type "function" and an id no other call of the choice has;
// - `finish_reason: "tool_calls"` ⇒ at least one call. Not the converse: OpenAI and vLLM answer
//   `stop` for a forced function (serving_chat.py: "The same is not true for named function calls").
import type { ChoiceAnswer } from '../answer.ts';
import { entryLabel } from '../violation.ts';
import { contractViolation, isObject, rawChoices, stopStrings, success, type Json, type RawChoice } from './response.ts';
import type { Rule } from './rule.ts';

/** The function names the request declares. */
const declared = (body: Json): string[] =>
  (Array.isArray(body.tools) ? body.tools : []).flatMap((t: unknown) =>
    isObject(t) && isObject(t.function) && typeof t.function.name === 'string' ? [t.function.name] : [],
  );

function choiceProblems(choice: ChoiceAnswer, raw: RawChoice | undefined, body: Json, k: number): string[] {
  const where = `choices[${k}]`;
  const calls = choice.toolCalls;
  const names = declared(body);
  const out: string[] = [];
  for (const [j, call] of calls.entries()) {
    if (!names.includes(call.name))
      out.push(
        names.length === 0
          ? `${where} calls ${JSON.stringify(call.name)}, but the request declares no tools`
          : `${where} calls ${JSON.stringify(call.name)}, which the request does not declare (${names.join(', ')})`,
      );
    const type = raw?.toolCalls[j]?.type;
    if (type !== undefined && type !== 'function') out.push(`${where}.tool_calls[${j}].type is ${JSON.stringify(type)}, not "function"`);
  }
  const choiceOf = body.tool_choice;
  if (choiceOf === 'none' && calls.length > 0) out.push(`${where} has ${calls.length} tool calls under tool_choice "none"`);
  const forced = isObject(choiceOf) && isObject(choiceOf.function) && typeof choiceOf.function.name === 'string' ? choiceOf.function.name : undefined;
  if (forced !== undefined && calls.some((c) => c.name !== forced))
    out.push(`${where} calls another function than the one tool_choice names (${JSON.stringify(forced)})`);
  // Only where the model ended on its own: a budget cuts a call short, and a stop string may cut its
  // arguments (vLLM and llama.cpp apply stop strings to the raw output, tool-call text included).
  if (choiceOf === 'required' && calls.length === 0 && choice.finish === 'stop' && stopStrings(body).length === 0)
    out.push(`${where} ended (finish_reason "stop") without a tool call under tool_choice "required"`);
  if (body.parallel_tool_calls === false && calls.length > 1) out.push(`${where} has ${calls.length} tool calls under parallel_tool_calls false`);
  // Unique within a choice, so that each tool result names one call. Not across choices: the contract
  // asks no more, and a stateless server may derive ids from the request (properties/fake-server.ts
  // does, so greedy choices repeat them).
  const ids = (raw?.toolCalls ?? []).map((c) => c.id).filter((id): id is string => typeof id === 'string' && id !== '');
  const repeated = ids.find((id, j) => ids.indexOf(id) !== j);
  if (repeated !== undefined) out.push(`${where} has two tool calls with the id ${JSON.stringify(repeated)}`);
  if (choice.finish === 'tool_calls' && calls.length === 0) out.push(`${where} has finish_reason "tool_calls" but no tool call`);
  return out;
}

export const toolCalls: Rule = {
  name: 'tool-calls',
  *check(rec, answers) {
    for (const [i, e] of rec.entries.entries()) {
      const answer = success(e, answers, i);
      if (!answer) continue;
      const raw = rawChoices(e.obs);
      const problems = answer.choices.flatMap((choice, k) => choiceProblems(choice, raw[k], e.call.body, k));
      if (problems.length > 0) yield contractViolation(toolCalls, rec, 'tool-calls', i, problems, answer);
    }
  },
  headline: (rec, v) => `${entryLabel(rec, v.entries[0]!)}: ${(v.problems ?? []).join('; ')}`,
};
