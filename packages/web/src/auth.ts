/**
 * Who the UI is signed in as: an API key kept in `sessionStorage` (it goes when the tab
 * closes; never localStorage, never the URL) and sent as `Authorization: Bearer` on every
 * call. When the server answers 401 the app shows the sign-in view instead of the page; with
 * authentication off nothing ever answers 401, so nothing changes.
 */
import { useEffect, useState } from 'preact/hooks';

const storageKey = 'annals.apiKey';

export interface AuthState {
  /** The key the UI sends, when signed in. */
  key: string | undefined;
  /** Set when the sign-in view shows: the server asked for a key (a 401, with its detail), or the user signed out. */
  challenge: { reason: 'unauthenticated'; detail: string } | { reason: 'signed-out' } | undefined;
  /** Bumped on every sign-in, so views load again with the new key. */
  generation: number;
}

function storedKey(): string | undefined {
  try {
    return window.sessionStorage.getItem(storageKey) ?? undefined;
  } catch {
    return undefined;
  }
}

let state: AuthState = { key: storedKey(), challenge: undefined, generation: 0 };
const listeners = new Set<(state: AuthState) => void>();

function update(next: Partial<AuthState>): void {
  state = { ...state, ...next };
  for (const listener of listeners) listener(state);
}

/** The headers that carry the key (none when signed out). */
export function authHeaders(): Record<string, string> {
  return state.key ? { authorization: `Bearer ${state.key}` } : {};
}

/** A 401 from the server: show the sign-in view with its detail. */
export function challenge(detail: string): void {
  update({ challenge: { reason: 'unauthenticated', detail } });
}

/** Keeps `key` for this tab and leaves the sign-in view; views load again. */
export function signIn(key: string): void {
  try {
    window.sessionStorage.setItem(storageKey, key);
  } catch {
    // Storage refused (a private window's quota): the key still holds until a reload.
  }
  update({ key, challenge: undefined, generation: state.generation + 1 });
}

/** Forgets the key and shows the sign-in view. */
export function signOut(): void {
  try {
    window.sessionStorage.removeItem(storageKey);
  } catch {
    // Nothing stored.
  }
  update({ key: undefined, challenge: { reason: 'signed-out' } });
}

export function useAuth(): AuthState {
  const [current, setCurrent] = useState(state);
  useEffect(() => {
    listeners.add(setCurrent);
    setCurrent(state);
    return () => {
      listeners.delete(setCurrent);
    };
  }, []);
  return current;
}
