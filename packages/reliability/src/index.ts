// SPDX-License-Identifier: Apache-2.0
// @mapperkit/reliability (private): fault-injection soak, fuzzing, security checks.
export {};
