/** Loads data for a view: loading, error and result states, refetched when `keys` change. */
import { useEffect, useState } from 'preact/hooks';

export type Loaded<T> = { state: 'loading' } | { state: 'error'; error: Error } | { state: 'ready'; value: T };

export function useData<T>(load: (signal: AbortSignal) => Promise<T>, keys: unknown[]): Loaded<T> {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: 'loading' });
  useEffect(() => {
    const abort = new AbortController();
    setLoaded({ state: 'loading' });
    load(abort.signal).then(
      (value) => abort.signal.aborted || setLoaded({ state: 'ready', value }),
      (error: unknown) =>
        abort.signal.aborted ||
        setLoaded({ state: 'error', error: error instanceof Error ? error : new Error(String(error)) }),
    );
    return () => abort.abort();
  }, keys);
  return loaded;
}
