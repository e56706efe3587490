// target: 'web' -- a page importing the package by name.
import * as shoal from 'shoal';
import { runSearch } from '../search.mjs';

runSearch(shoal).then(
  (value) => { window.shoalResult = { ok: true, value }; },
  (err) => { window.shoalResult = { ok: false, error: `${err.name}: ${err.message}` }; },
);
