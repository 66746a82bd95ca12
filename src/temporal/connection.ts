// Temporal client and worker connections, with the TLS, API key and metadata of Temporal's
// environment configuration. An unreachable server is one clear line naming TEMPORAL_ADDRESS.
import { Client, Connection, type DataConverter } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { type Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { quietCallContext } from './callContext.js';

type ConnectionSettings = Config['temporal']['connection'];

const unreachable = (address: string, error: unknown) =>
  new ConfigError(
    `cannot reach Temporal at TEMPORAL_ADDRESS=${address}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
  );

export async function connectClient(
  address: string,
  namespace: string,
  settings: ConnectionSettings,
  dataConverter: DataConverter,
): Promise<Client> {
  try {
    const connection = await Connection.connect({ address, ...settings, connectTimeout: '5 seconds' });
    quietCallContext(connection); // connect left the call context on: async_hooks for every call (callContext.ts)
    return new Client({ connection, namespace, dataConverter });
  } catch (error) {
    throw unreachable(address, error);
  }
}

export async function connectWorker(address: string, settings: ConnectionSettings): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address, ...settings });
  } catch (error) {
    throw unreachable(address, error);
  }
}
