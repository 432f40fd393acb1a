import type { Store } from './store.ts';

export async function openMysqlStore(_url: string, _poolSize: number): Promise<Store> {
  throw new Error('the MySQL backend is not built yet');
}
