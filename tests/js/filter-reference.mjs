// filter-reference.mjs -- an independent evaluator of Shoal's filter
// language (docs/API.md, "Filters") over plain JS objects, for the
// differential test against the C evaluator.  It is written from the
// documented semantics, not from src/filter/filter.c: JS values instead of
// CBOR, recursion over Object.entries instead of a compiled program.

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isScalar = (v) => v === null || ['number', 'string', 'boolean'].includes(typeof v);

// Every value a dotted path reaches, fanning out at arrays.
function reach(value, segs, i = 0) {
  if (i === segs.length) return [value];
  if (isObject(value)) return Object.hasOwn(value, segs[i]) ? reach(value[segs[i]], segs, i + 1) : [];
  if (!Array.isArray(value)) return [];
  const out = [];
  const seg = segs[i];
  const asIndex = /^(0|[1-9][0-9]{0,8})$/.test(seg) ? Number(seg) : -1;
  value.forEach((element, at) => {
    if (at === asIndex) out.push(...reach(element, segs, i + 1));
    if (isObject(element)) out.push(...reach(element, segs, i));
  });
  return out;
}

const utf8 = (s) => Buffer.from(s, 'utf8');

function equal(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  return a === b; // strings, booleans, null
}

function compare(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(utf8(a), utf8(b));
  return undefined;
}

// Whether any reached value -- or any scalar element of a reached array --
// satisfies test.
function any(values, test) {
  return values.some((v) => (isScalar(v) && test(v)) || (Array.isArray(v) && v.some((e) => isScalar(e) && test(e))));
}

function operator(op, operand, segs, doc) {
  const values = doc === null ? [] : reach(doc, segs);
  switch (op) {
    case '$eq':
      if (operand === null) return values.length === 0 || any(values, (v) => v === null);
      return any(values, (v) => equal(v, operand));
    case '$ne':
      return !operator('$eq', operand, segs, doc);
    case '$gt': case '$gte': case '$lt': case '$lte':
      return any(values, (v) => {
        const c = compare(v, operand);
        if (c === undefined) return false;
        return op === '$gt' ? c > 0 : op === '$gte' ? c >= 0 : op === '$lt' ? c < 0 : c <= 0;
      });
    case '$in':
      return (operand.includes(null) && values.length === 0) || any(values, (v) => operand.some((o) => equal(v, o)));
    case '$nin':
      return !operator('$in', operand, segs, doc);
    case '$exists':
      return (values.length > 0) === operand;
    case '$not':
      return !field(segs, operand, doc);
    default:
      throw new Error(`reference: unknown operator ${op}`);
  }
}

function field(segs, condition, doc) {
  if (isObject(condition)) return Object.entries(condition).every(([op, operand]) => operator(op, operand, segs, doc));
  return operator('$eq', condition, segs, doc);
}

/** Whether a record with metadata doc (an object, or null for none) passes filter. */
export function matches(filter, doc) {
  return Object.entries(filter).every(([key, value]) => {
    if (key === '$and') return value.every((f) => matches(f, doc));
    if (key === '$or') return value.some((f) => matches(f, doc));
    if (key === '$not') return !matches(value, doc);
    return field(key.split('.'), value, doc);
  });
}
