// A single-page app as a front-end developer wires the package in: the
// collector's address comes from the app's own runtime config, numbers that
// a route renders later are swapped by the package's observer, and every
// route change is reported with pageView().
import init, { pageView, start, type Outcome, type StartOptions } from 'ringsource';

interface RuntimeConfig {
  site: string;
  collector: string;
}

declare global {
  interface Window {
    /** What start() showed, for whoever looks (the end-to-end test does). */
    __outcome?: Outcome;
    /** Each pageView() answer, in order. */
    __pageViews: boolean[];
  }
}

const routes: Record<string, { title: string; html: string }> = {
  '/': { title: 'Pipe & Drain: home', html: '<h1>Blocked drain?</h1><p>We come within the hour.</p>' },
  '/contacts': {
    title: 'Pipe & Drain: contacts',
    html: '<h1>Contacts</h1><p id="contacts-phone">Call us on 8 495 123 45 67, 24/7.</p>',
  },
};

function render(path: string): void {
  const route = routes[path] ?? routes['/'];
  document.title = route.title;
  document.getElementById('view')!.innerHTML = route.html;
}

async function main(): Promise<void> {
  window.__pageViews = [];
  render(location.pathname);
  const config = (await (await fetch('/config.json')).json()) as RuntimeConfig;
  const options: StartOptions = { site: config.site, collector: config.collector };
  await init();
  const outcome = await start(options);
  window.__outcome = outcome;
  document.getElementById('status')!.textContent = `ringsource: ${outcome.kind}${outcome.reason ? ` (${outcome.reason})` : ''}`;

  document.addEventListener('click', (event) => {
    const link = (event.target as Element).closest<HTMLAnchorElement>('a[data-route]');
    if (!link) return;
    event.preventDefault();
    history.pushState(null, '', link.pathname);
    render(link.pathname);
    void pageView(location.href, document.title).then((recorded) => window.__pageViews.push(recorded));
  });
}

void main();
