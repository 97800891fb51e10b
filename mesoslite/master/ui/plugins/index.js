// The dashboard's plugins, one module each (see /ui/js/plugins.js for the contract).
// To add one: write plugins/<name>.js with a default export, import it here and
// list it below.  The services and batch frameworks' pages go here.
import services from './services.js';
import batch from './batch.js';

export default [services, batch];
