// The API behind a credential's base URL (ProviderDefinition.backends): `public` forwards the
// provider's public API as is; the sign-in backends map a public request onto the API that
// accepts sign-in tokens and map its answer back, so a client of the public API works unchanged.
import type { ApiBackend } from '../../providers/types.js';
import { mapCodeAssist } from './codeAssist.js';
import { mapCodex } from './codex.js';
import type { MappedRequest, PublicRequest } from './request.js';

export type { AnswerMapping, MappedRequest, PublicRequest } from './request.js';

/** Null for `public`: the call goes out as the client sent it. ValidationError for a request the backend cannot serve. */
export function mapRequest(backend: ApiBackend, request: PublicRequest): MappedRequest | null {
  switch (backend) {
    case 'public':
      return null;
    case 'codex':
      return mapCodex(request);
    case 'code-assist':
      return mapCodeAssist(request);
  }
}
