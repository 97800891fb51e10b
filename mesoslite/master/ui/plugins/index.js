// The dashboard's plugins, one module each (see /ui/js/plugins.js for the contract).
// To add one: write plugins/<name>.js with a default export, import it here and
// list it below.  The services and batch frameworks' pages go here.
export default [];
