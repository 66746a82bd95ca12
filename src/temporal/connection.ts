// Temporal client and worker connections. An unreachable server is one clear line naming TEMPORAL_ADDRESS.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ConfigError } from '../config.js';

const unreachable = (address: string, error: unknown) =>
  new ConfigError(
    `cannot reach Temporal at TEMPORAL_ADDRESS=${address}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
  );

export async function connectClient(address: string, namespace: string): Promise<Client> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: '5 seconds' });
    return new Client({ connection, namespace });
  } catch (error) {
    throw unreachable(address, error);
  }
}

export async function connectWorker(address: string): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address });
  } catch (error) {
    throw unreachable(address, error);
  }
}
