/**
 * The app's frame: a skip link, the navigation, sign out when signed in, and the view of the
 * current URL, or the sign-in view when the server asked for a key (a 401).
 */
import { useEffect } from 'preact/hooks';
import { api } from './api.js';
import { signOut, useAuth } from './auth.js';
import { Link, useLocation } from './router.js';
import { ActorView, AuditView, CorrelationView } from './views/audit.js';
import { ChangesView } from './views/changes.js';
import { DashboardView } from './views/dashboard.js';
import { EventView } from './views/event.js';
import { IntegrityView } from './views/integrity.js';
import { CheckpointsView, ParkedView } from './views/read-side.js';
import { SignInView } from './views/sign-in.js';
import { StreamsView, StreamView } from './views/streams.js';
import { SubjectsView, SubjectView } from './views/subjects.js';
import { TailView } from './views/tail.js';
import { TimeTravelView } from './views/time-travel.js';

const sections = [
  { to: '/', label: 'Dashboard', match: (path: string) => path === '/' },
  { to: '/tail', label: 'Live tail', match: (path: string) => path.startsWith('/tail') },
  { to: '/streams', label: 'Streams', match: (path: string) => path.startsWith('/streams') },
  { to: '/changes', label: 'Changes', match: (path: string) => path.startsWith('/changes') },
  { to: '/audit', label: 'Audit', match: (path: string) => path.startsWith('/audit') },
  { to: '/checkpoints', label: 'Read side', match: (path: string) => path.startsWith('/checkpoints') },
  { to: '/integrity', label: 'Integrity', match: (path: string) => path.startsWith('/integrity') },
  { to: '/subjects', label: 'Personal data', match: (path: string) => path.startsWith('/subjects') },
];

function View({ path }: { path: string }) {
  const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second, third] = segments;
  if (segments.length === 0) return <DashboardView />;
  if (first === 'tail' && segments.length === 1) return <TailView />;
  if (first === 'streams' && segments.length === 1) return <StreamsView />;
  if (first === 'streams' && second !== undefined && segments.length === 2) {
    return <StreamView key={second} streamId={second} />;
  }
  if (first === 'streams' && second !== undefined && third === 'time' && segments.length === 3) {
    return <TimeTravelView key={second} streamId={second} />;
  }
  if (first === 'events' && second !== undefined && segments.length === 2) {
    return <EventView key={second} eventId={second} />;
  }
  if (first === 'changes' && segments.length === 1) return <ChangesView />;
  if (first === 'audit' && segments.length === 1) return <AuditView />;
  if (first === 'audit' && second === 'actors' && third !== undefined && segments.length === 3) {
    return <ActorView key={third} actor={third} />;
  }
  if (first === 'audit' && second === 'correlations' && third !== undefined && segments.length === 3) {
    return <CorrelationView key={third} correlationId={third} />;
  }
  if (first === 'checkpoints' && segments.length === 1) return <CheckpointsView />;
  if (first === 'checkpoints' && second !== undefined && segments.length === 2) {
    return <ParkedView key={second} name={second} />;
  }
  if (first === 'integrity' && segments.length === 1) return <IntegrityView />;
  if (first === 'subjects' && segments.length === 1) return <SubjectsView />;
  if (first === 'subjects' && second !== undefined && segments.length === 2) {
    return <SubjectView key={second} subjectId={second} />;
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
  const auth = useAuth();
  // Some views call only public routes (the dashboard reads /metrics): ask once whether the
  // server wants a key, so that the sign-in shows at once. With auth off this just succeeds.
  useEffect(() => {
    api.head().catch(() => {});
  }, []);
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
        {auth.key && !auth.challenge ? (
          <button type="button" class="sign-out" onClick={signOut}>
            Sign out
          </button>
        ) : null}
      </header>
      <main id="main">
        {auth.challenge ? <SignInView challenge={auth.challenge} /> : <View key={auth.generation} path={path} />}
      </main>
    </>
  );
}
