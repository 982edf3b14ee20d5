// SPDX-License-Identifier: Apache-2.0
import type { PropertyValue } from '../values.js';

/**
 * A property value stored in place, for the per-property slots that every sample updates (the
 * last-value cache, the twin reporter). Numbers are kept in a field of their own so that V8
 * stores them unboxed (no new heap number retained per sample); other values by reference.
 */
export class ValueCell {
  private num = 0.5;
  private other: PropertyValue | undefined = undefined;
  private isNum = false;

  protected storeValue(v: PropertyValue): void {
    if (typeof v === 'number') {
      this.num = v;
      this.isNum = true;
      this.other = undefined;
    } else {
      this.other = v;
      this.isNum = false;
    }
  }

  protected get storedValue(): PropertyValue {
    return this.isNum ? this.num : (this.other as PropertyValue);
  }
}
