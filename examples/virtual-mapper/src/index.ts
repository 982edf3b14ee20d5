// SPDX-License-Identifier: Apache-2.0
export { default as virtualDriver } from './driver.js';
