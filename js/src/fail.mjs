// Errors raised by the JS layer use the same generated classes, codes and
// messages as the ones the C core reports, so callers handle one family.
import { errorsByCode } from '../dist/errors.mjs';

const codeOfClass = new Map([...errorsByCode].map(([code, [cls]]) => [cls, code]));

/** An instance of a generated error class with its code and the default message + detail. */
export function fail(Class, detail) {
  const code = codeOfClass.get(Class);
  const [, , message] = errorsByCode.get(code);
  return new Class(`${message}: ${detail}`, code);
}

/** The numeric code of a generated error class. */
export function codeOf(Class) {
  return codeOfClass.get(Class);
}
