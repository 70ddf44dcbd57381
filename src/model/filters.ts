/**
 * A list endpoint's filters, as Docker's `filters` query parameter carries them: key → values
 * (`{"label":{"a=b":true}}` becomes `label → ["a=b"]`). Parsed once in `api/`, read by every service.
 */
export type Filters = Map<string, string[]>;
