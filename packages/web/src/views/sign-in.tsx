/**
 * Signing in: shown instead of the page when the server answers 401. The key is checked
 * against the server (`GET /position`) before it is kept; a refused key leaves the form with
 * the server's reason. The key stays in this tab's sessionStorage only.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, checkKey } from '../api.js';
import { type AuthState, signIn } from '../auth.js';

/** What the server said, as a sentence. */
const said = (detail: string) => `The server says: ${detail.replace(/\.$/, '')}.`;

export function SignInView({ challenge }: { challenge: NonNullable<AuthState['challenge']> }) {
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);

  async function submit(form: HTMLFormElement) {
    const key = String(new FormData(form).get('key') ?? '').trim();
    if (!key) {
      setError('Enter an API key.');
      input.current?.focus();
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await checkKey(key, AbortSignal.timeout(10_000));
      signIn(key);
    } catch (caught) {
      setError(
        caught instanceof ApiError
          ? caught.status === 0
            ? caught.message
            : said(caught.message)
          : `The server did not answer: ${caught instanceof Error ? caught.message : String(caught)}`,
      );
      setBusy(false);
      input.current?.select();
      input.current?.focus();
    }
  }

  return (
    <section aria-labelledby="sign-in-title" class="sign-in">
      <h1 id="sign-in-title">Sign in</h1>
      <p id="sign-in-why" class="muted">
        {challenge.reason === 'signed-out'
          ? 'You signed out. '
          : `This server asks for an API key. ${challenge.detail ? `${said(challenge.detail)} ` : ''}`}
        The key stays in this tab only, and goes when it closes.
      </p>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void submit(event.currentTarget);
        }}
      >
        <label>
          API key
          <input
            ref={input}
            name="key"
            type="password"
            autocomplete="off"
            spellcheck={false}
            required
            placeholder="ank_…"
            aria-describedby={error ? 'sign-in-why sign-in-error' : 'sign-in-why'}
            aria-invalid={error ? true : undefined}
          />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {error ? (
        <p id="sign-in-error" role="alert" class="error">
          {error}
        </p>
      ) : null}
    </section>
  );
}
