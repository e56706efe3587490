// The package's default entry (index.mjs) in workerd, as a user who listed
// it by hand would load it: the first Index.create must fail with a message
// that names 'shoal/worker' (it used to be a bare "Invalid URL string").
import * as shoal from 'shoal/index.mjs';

export default {
  async fetch() {
    try {
      (await shoal.Index.create({ dim: 3 })).free();
      return Response.json({ ok: true });
    } catch (err) {
      return Response.json({ ok: false, name: err.name, message: err.message });
    }
  },
};
