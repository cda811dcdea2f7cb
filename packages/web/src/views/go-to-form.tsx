/** A one-field form that opens the view of what it names (a stream, a subject, a request). */
import { navigate } from '../router.js';

export interface GoToFormProps {
  /** The field's label and name. */
  label: string;
  name: string;
  placeholder: string;
  /** The submit button's text. */
  action: string;
  /** The path of the view of a value. */
  pathOf: (value: string) => string;
  value?: string;
  ariaLabel?: string;
}

export function GoToForm({ label, name, placeholder, action, pathOf, value = '', ariaLabel }: GoToFormProps) {
  return (
    <form
      class="toolbar"
      aria-label={ariaLabel}
      onSubmit={(event) => {
        event.preventDefault();
        const given = String(new FormData(event.currentTarget).get(name) ?? '').trim();
        if (given) navigate(pathOf(given));
      }}
    >
      <label>
        {label} <input name={name} required defaultValue={value} placeholder={placeholder} />
      </label>
      <button type="submit">{action}</button>
    </form>
  );
}
