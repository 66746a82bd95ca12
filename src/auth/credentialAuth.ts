// A stored credential → the auth a provider call needs (the client builder decides the headers).
import type { CredentialMetadata, CredentialSecret } from '../db/credentials.js';
import { MisconfiguredError } from '../errors.js';
import type { CallAuth } from '../providers/types.js';

export function callAuth(
  metadata: Pick<CredentialMetadata, 'id' | 'authType'> & Partial<Pick<CredentialMetadata, 'providerMetadata'>>,
  secret: CredentialSecret,
): CallAuth {
  if (metadata.authType === 'api_key') {
    if (!secret.apiKey) throw new MisconfiguredError(`credential ${metadata.id} has no API key`);
    return { type: 'api_key', apiKey: secret.apiKey };
  }
  if (!secret.accessToken) throw new MisconfiguredError(`credential ${metadata.id} has no access token`);
  const project = metadata.providerMetadata?.project;
  return { type: 'oauth', accessToken: secret.accessToken, accountId: secret.accountId, ...(project ? { project } : {}) };
}
