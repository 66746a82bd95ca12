// The /v1 route table: every route under /v1, in the order the OpenAPI document lists them.
import { credentialRoutes } from './credentials.js';
import { keyRoutes } from './keys.js';
import { poolRoutes } from './pools.js';
import { oauthRoutes } from './oauth.js';
import type { AnyRoute } from './route.js';
import { usageRoutes } from './usage.js';

export const V1_ROUTES: readonly AnyRoute[] = [...credentialRoutes, ...oauthRoutes, ...keyRoutes, ...poolRoutes, ...usageRoutes];
