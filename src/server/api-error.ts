// The OpenAI error envelope, `{error:{message,type,param,code}}`, and the one place that decides
// which status and envelope every failure gets (spec/api.md "Errors"). Anything a client can send
// maps to a 4xx here; only a bug in the server itself is a 500.
import { ChatMappingError } from '../harmony/chat-to-harmony.ts';
import { GenerateError } from '../engine/runtime.ts';

export interface ErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get body(): { error: ErrorBody } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null, code: string | null = 'invalid_value'): ApiError =>
  new ApiError(400, message, 'invalid_request_error', param, code);

/** An ajv instance path (`/messages/0/role`) in OpenAI's param form (`messages[0].role`). */
export function paramOf(instancePath: string, missing?: string): string | null {
  const parts = instancePath.split('/').filter(Boolean);
  if (missing !== undefined) parts.push(missing);
  if (parts.length === 0) return null;
  return parts.reduce((param, part) => (/^\d+$/.test(part) ? `${param}[${part}]` : param ? `${param}.${part}` : part), '');
}

interface AjvIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Fastify's errors carry `code` (FST_ERR_…), `statusCode` and, for schema failures, `validation`. */
interface FastifyLikeError extends Error {
  code?: string;
  statusCode?: number;
  validation?: AjvIssue[];
}

function fromValidation(issue: AjvIssue): ApiError {
  const missing = issue.keyword === 'required' ? String(issue.params.missingProperty) : undefined;
  const param = paramOf(issue.instancePath, missing);
  const where = param ?? 'the request body';
  if (missing !== undefined) return invalidRequest(`${where} is required`, param, 'missing_required_parameter');
  if (issue.keyword === 'type') return invalidRequest(`${where} ${issue.message ?? 'has the wrong type'}`, param, 'invalid_type');
  if (issue.keyword === 'enum') {
    const allowed = (issue.params.allowedValues as unknown[] | undefined)?.map((v) => JSON.stringify(v)).join(', ');
    return invalidRequest(`${where} must be one of ${allowed}`, param);
  }
  return invalidRequest(`${where} ${issue.message ?? 'is invalid'}`, param);
}

/** The status and envelope for any error a request ended with. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof ChatMappingError) return invalidRequest(e.message, e.param, e.code);
  if (e instanceof GenerateError) {
    if (e.code === 'overloaded') {
      return new ApiError(429, `the server is busy, retry shortly (${e.message})`, 'rate_limit_error', null, 'rate_limit_exceeded', { 'retry-after': '1' });
    }
    if (e.code === 'context_length_exceeded') return invalidRequest(e.message, 'messages', 'context_length_exceeded');
    return invalidRequest(e.message, null);
  }
  const err = e as FastifyLikeError;
  if (err.validation?.[0]) return fromValidation(err.validation[0]);
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return invalidRequest(`the request body is not valid JSON: ${err.message}`, null, 'invalid_json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, err.message, 'invalid_request_error', null, 'request_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, `${err.message}; send application/json`, 'invalid_request_error', null, 'unsupported_media_type');
  }
  // SyntaxError from JSON.parse surfaces with status 400 on some paths.
  if (err instanceof SyntaxError) return invalidRequest(`the request body is not valid JSON: ${err.message}`, null, 'invalid_json');
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(err.statusCode, err.message, 'invalid_request_error', null, err.code ?? null);
  }
  return new ApiError(500, 'internal server error', 'server_error', null, 'internal_error');
}
