/** The app's frame: a skip link, the navigation, and the view of the current URL. */
import { Link, useLocation } from './router.js';
import { DashboardView } from './views/dashboard.js';
import { EventView } from './views/event.js';
import { StreamsView, StreamView } from './views/streams.js';
import { TailView } from './views/tail.js';

const sections = [
  { to: '/', label: 'Dashboard', match: (path: string) => path === '/' },
  { to: '/tail', label: 'Live tail', match: (path: string) => path.startsWith('/tail') },
  { to: '/streams', label: 'Streams', match: (path: string) => path.startsWith('/streams') },
];

function View({ path }: { path: string }) {
  const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second] = segments;
  if (segments.length === 0) return <DashboardView />;
  if (first === 'tail' && segments.length === 1) return <TailView />;
  if (first === 'streams' && segments.length === 1) return <StreamsView />;
  if (first === 'streams' && second !== undefined && segments.length === 2) {
    return <StreamView key={second} streamId={second} />;
  }
  if (first === 'events' && second !== undefined && segments.length === 2) {
    return <EventView key={second} eventId={second} />;
  }
  return (
    <section aria-labelledby="missing-title">
      <h1 id="missing-title">Not found</h1>
      <p>
        There is no page at <code>{path}</code>. <Link to="/">Back to the dashboard</Link>.
      </p>
    </section>
  );
}

export function App() {
  const { path } = useLocation();
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">Annals</span>
        <nav aria-label="Sections">
          <ul>
            {sections.map((section) => (
              <li key={section.to}>
                <Link to={section.to} aria-current={section.match(path) ? 'page' : undefined}>
                  {section.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main">
        <View path={path} />
      </main>
    </>
  );
}
