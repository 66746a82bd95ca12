// What goes out to the provider for one attempt: the call the client builder decides (URL,
// headers, a sign-in backend's mapping), with the body rewritten where it must be (the Claude
// Code system block; asking an OpenAI chat stream for its usage), and sent through undici's
// dispatcher with origin and path as they are (its top-level request() would parse the URL again).
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { buildProviderCall, needsBody, type ProviderCall } from '../auth/clientBuilder.js';
import { usageReporting } from '../providers/inferencePaths.js';
import type { CallAuth, InferencePath, ProviderDefinition } from '../providers/types.js';
import { askStreamUsage } from '../usage/streamUsage.js';
import type { RequestBody } from './body.js';

/** The client's request as the pipeline sees it. */
export interface ClientRequest {
  method: string;
  /** Provider path without the query, e.g. `/v1/messages`. */
  path: string;
  /** `?…` or ''. */
  search: string;
  /** Node's IncomingHttpHeaders (lowercase names). */
  headers: Record<string, string | string[] | undefined>;
  body: RequestBody;
}

/** How this call's tokens are reported, and the body that asks for them when the provider reports them only on request. */
export interface Metering {
  reporting: InferencePath['usage'];
  /** The request body asking an OpenAI chat stream for its usage (the answer is stripped of it), when that was needed. */
  asked: Buffer | undefined;
}

export function meteringOf(definition: ProviderDefinition, auth: CallAuth['type'], request: ClientRequest): Metering {
  const reporting = usageReporting(definition, request.method, request.path);
  const plain = request.body.plain;
  const asked = reporting === 'asked' && plain && !needsBody(definition, auth) ? askStreamUsage(plain) : undefined;
  return { reporting, asked };
}

export interface OutgoingCall {
  call: ProviderCall;
  headers: Record<string, string>;
  body: Buffer | Readable | undefined;
}

/** The call for `auth`, its headers and the body to send (rewritten only when plain; a streamed one passes as it comes). */
export function outgoingCall(definition: ProviderDefinition, auth: CallAuth, request: ClientRequest, metering: Metering): OutgoingCall {
  const { body: given } = request;
  const call = buildProviderCall(definition, {
    auth,
    method: request.method,
    path: request.path,
    search: request.search,
    clientHeaders: request.headers,
    body: given.held,
  });
  let body: Buffer | Readable | undefined = call.body ?? (given.present ? (given.held ?? given.stream()) : undefined);
  if (given.plain && call.transformBody) body = call.transformBody(metering.asked ?? given.plain);
  else if (metering.asked) body = metering.asked;
  const headers = { ...call.headers };
  // The stripped answer is edited as it streams: it must come plain.
  if (metering.asked) headers['accept-encoding'] = 'identity';
  if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
  return { call, headers, body };
}

/** Sends an outgoing call; `signal` (an AbortSignal or undici's EventEmitter form) aborts it. */
export function send(
  dispatcher: Dispatcher,
  out: OutgoingCall,
  method: string,
  opts: { signal?: Dispatcher.RequestOptions['signal']; headersTimeout: number; bodyTimeout: number },
): Promise<Dispatcher.ResponseData> {
  return dispatcher.request({
    origin: out.call.url.origin,
    path: out.call.url.pathname + out.call.url.search,
    method: method as Dispatcher.HttpMethod,
    headers: out.headers,
    body: out.body,
    signal: opts.signal,
    headersTimeout: opts.headersTimeout,
    bodyTimeout: opts.bodyTimeout,
  });
}
