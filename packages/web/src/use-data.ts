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

/**
 * Calls `tick` now and then every `everySeconds` after each call ends, until the view goes
 * or the period changes; the error of the last call (undefined once one succeeds).
 */
export function usePolling(tick: (signal: AbortSignal) => Promise<void>, everySeconds: number): Error | undefined {
  const [error, setError] = useState<Error | undefined>();
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        await tick(abort.signal);
        setError(undefined);
      } catch (caught) {
        if (abort.signal.aborted) return;
        setError(caught instanceof Error ? caught : new Error(String(caught)));
      }
      if (!abort.signal.aborted) timer = setTimeout(run, everySeconds * 1000);
    };
    void run();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [everySeconds]);
  return error;
}
