// Every migration, by name; kysely applies them in name order. Add new files here.
import type { Migration } from 'kysely';
import * as initial from './0001_initial.js';

export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
};
