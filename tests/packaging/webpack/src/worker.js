// target: 'webworker' -- a dedicated worker that runs the search and posts
// the result to its page (public/worker.html).
import * as shoal from 'shoal';
import { runSearch } from '../search.mjs';

runSearch(shoal).then(
  (value) => postMessage({ ok: true, value }),
  (err) => postMessage({ ok: false, error: `${err.name}: ${err.message}` }),
);
