// Search attributes that let an operator find credentials in the Temporal Web UI,
// e.g. `MaestroAuthStatus = 'reauth_required'`. Registered by the dev server at start.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const CredentialIdKey = defineSearchAttributeKey('MaestroCredentialId', SearchAttributeType.KEYWORD);
export const ProviderKey = defineSearchAttributeKey('MaestroProvider', SearchAttributeType.KEYWORD);
export const AuthStatusKey = defineSearchAttributeKey('MaestroAuthStatus', SearchAttributeType.KEYWORD);
export const ExpiresAtKey = defineSearchAttributeKey('MaestroExpiresAt', SearchAttributeType.DATETIME);

export const MAESTRO_SEARCH_ATTRIBUTES = [CredentialIdKey, ProviderKey, AuthStatusKey, ExpiresAtKey];
