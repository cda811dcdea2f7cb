/**
 * Which decider time travel folds a stream's state with: a labelled <select> of the app's
 * deciders (`GET /deciders`), first the server's own default (merged data when it has none).
 * The choice is the caller's (kept in the URL as `?decider=`); a name the server does not list
 * stays an option, so the select shows what the URL asks for and the step says why it fails.
 */
import { api } from '../api.js';
import { useData } from '../use-data.js';
import { Failure } from './states.js';

export function DeciderPicker({ value, onChange }: { value: string; onChange: (decider: string) => void }) {
  const loaded = useData((signal) => api.deciders(signal), []);
  const listed = loaded.state === 'ready' ? loaded.value.deciders.map((decider) => decider.name) : [];
  const fallback = loaded.state === 'ready' ? loaded.value.default : null;
  const names = value && !listed.includes(value) ? [...listed, value] : listed;
  return (
    <div class="toolbar">
      <label>
        State folded with
        <select
          name="decider"
          value={value}
          disabled={loaded.state === 'loading'}
          aria-busy={loaded.state === 'loading'}
          onChange={(event) => onChange(event.currentTarget.value)}
        >
          <option value="">
            {fallback ? `${fallback} (the server's default)` : 'Merged event data (the default)'}
          </option>
          {names.map((name) => (
            <option key={name} value={name}>
              {listed.includes(name) ? `Decider ${name}` : `${name} (not a decider of the app)`}
            </option>
          ))}
        </select>
      </label>
      {loaded.state === 'error' ? <Failure error={loaded.error} /> : null}
    </div>
  );
}
