/**
 * A mistake of the user's (a bad flag value, an impossible combination): printed as one line with what to do next,
 * exit code 1, never a stack trace.
 */
export class UsageError extends Error {
  readonly code = 'WSLAB_USAGE';
}
