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
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return invalidRequest('the request body is not as long as its Content-Length says', null, 'invalid_content_length');
    // Raised before routing (fastify's frameworkErrors): a target that does not percent-decode, a
    // path parameter over fastify's length limit.
    case 'FST_ERR_BAD_URL':
      return invalidRequest('the request target is not a valid URL path (bad percent-encoding)', null, 'invalid_url');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError(414, 'a path segment of the request target is too long', 'invalid_request_error', null, 'uri_too_long');
  }
  // SyntaxError from JSON.parse surfaces with status 400 on some paths.
  if (err instanceof SyntaxError) return invalidRequest(`the request body is not valid JSON: ${err.message}`, null, 'invalid_json');
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(err.statusCode, err.message, 'invalid_request_error', null, err.code ?? null);
  }
  return new ApiError(500, 'internal server error', 'server_error', null, 'internal_error');
}

/**
 * The answer to a request Node's HTTP parser refused before fastify saw it (the server's
 * `clientError` event): null when there is no one to answer (the peer reset the connection).
 */
export function fromClientError(error: Error & { code?: string }): ApiError | null {
  const bad = (message: string, code: string) => invalidRequest(`${message} (${error.code ?? 'parse error'})`, null, code);
  switch (error.code) {
    case 'ECONNRESET':
      return null;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(408, 'the request was not received in time', 'invalid_request_error', null, 'request_timeout');
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(431, 'the request headers are too large', 'invalid_request_error', null, 'request_header_fields_too_large');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new ApiError(413, 'the chunk extensions of the request body are too large', 'invalid_request_error', null, 'request_too_large');
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return bad('the Content-Length header is invalid, repeated with another value, or sent with Transfer-Encoding', 'invalid_content_length');
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return bad('the Transfer-Encoding header is invalid, or sent with Content-Length', 'invalid_transfer_encoding');
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_STRICT':
      return bad('the request body is not valid chunked transfer encoding', 'invalid_transfer_encoding');
    case 'HPE_INVALID_METHOD':
    case 'HPE_INVALID_URL':
    case 'HPE_INVALID_VERSION':
    case 'HPE_INVALID_CONSTANT':
      return bad('the request line is not valid HTTP/1.1', 'malformed_request');
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
      return bad('a request header is not valid HTTP/1.1', 'malformed_request');
    default:
      return bad('the request is not valid HTTP/1.1', 'malformed_request');
  }
}
