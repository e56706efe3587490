// A Vite app importing the package by name (the "browser" condition).
import * as shoal from 'shoal';
import { runSearch } from './search.mjs';

runSearch(shoal).then(
  (value) => { window.shoalResult = { ok: true, value }; },
  (err) => { window.shoalResult = { ok: false, error: `${err.name}: ${err.message}` }; },
);
