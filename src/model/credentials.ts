// The words every floor uses for a credential and a Maestro key, apart from how they are stored
// (src/db/) or served (src/api/). Workflow-safe (no Node imports).
import type { ProviderId } from './providers.js';

export type AuthType = 'oauth' | 'api_key';
export type CredentialStatus = 'active' | 'reauth_required' | 'disabled';

/** Non-secret provider facts a credential's calls need (Gemini sign-in: its Code Assist project). */
export interface ProviderMetadata {
  project?: string;
}

/** A stored credential as every caller sees it: never a secret. */
export interface CredentialMetadata {
  id: string;
  name: string;
  provider: ProviderId;
  authType: AuthType;
  status: CredentialStatus;
  expiresAt: string | null;
  tokenObtainedAt: string | null;
  version: number;
  refreshCount: number;
  lastRefreshedAt: string | null;
  lastError: string | null;
  /** Non-secret provider facts (Gemini sign-in: `{project}`), or null. */
  providerMetadata: ProviderMetadata | null;
  createdAt: string;
  updatedAt: string;
}

export type KeyRole = 'admin' | 'client';
export interface KeyLimits {
  requestsPerMinute?: number;
  tokensPerDay?: number;
  /** Calls in flight at once (src/clientKeys/concurrentCalls.ts); unset: 32 for a client key, none for an admin key. */
  concurrentCalls?: number;
}
export interface KeyCredentialGrant {
  id: string;
  provider: ProviderId;
}
