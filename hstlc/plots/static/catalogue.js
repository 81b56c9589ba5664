/* hstlc catalogue table: sort, filter and page every lightcurve, offline (file://).
 *
 * The page (hstlc/plots/table_page.py) loads a data script that assigns a global (named
 * by data-global on #catalogue-root): {columns: [{key, heading, kind, format}], links,
 * keys, rows: [[...], ...]}.  This script builds, inside #catalogue-root:
 *   #shown-count, select#page-size, button#prev-page, #page-number, button#next-page,
 *   button#clear-filters, table#catalogue (th[data-key] to sort, input[data-filter] to
 *   filter, tbody tr per row of the page: img.thumb, td.number, a.page, a.periodogram,
 *   a.fits) and p#no-match.
 * Text is only ever set with textContent.  The view (sort, filters, page, page size) is
 * kept in location.hash, so a link reproduces it.  The logic (TableModel) has no DOM and
 * is exported for node when loaded as a module.
 */
(function () {
  "use strict";

  const PAGE_SIZES = [50, 100, 500];
  const DEFAULT_PAGE_SIZE = 100;
  const DEBOUNCE_MS = 150;
  const NUMBER = "[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:e[+-]?\\d+)?";
  const COMPARISON = new RegExp("^(>=|<=|>|<|=)?\\s*(" + NUMBER + ")$", "i");
  const RANGE = new RegExp("^(" + NUMBER + ")\\s*\\.\\.\\s*(" + NUMBER + ")$", "i");
  const BOOLEANS = { yes: 1, true: 1, 1: 1, no: 0, false: 0, 0: 0 };
  const HINTS = {
    text: "contains (any case)",
    number: "a number, >3, >=3, <1e-3, <=2, =2 or 1..5",
    bool: "yes, no, true, false, 1 or 0",
  };

  /* ---- values: sort keys, filters, formats (no DOM) ---------------------------------- */

  /** Sort and filter keys of one column: lower-case text (null when empty) or numbers
   * (NaN when null; booleans as 1 and 0). */
  function columnKeys(rows, position, kind) {
    const n = rows.length;
    if (kind === "text") {
      const keys = new Array(n);
      for (let i = 0; i < n; i++) {
        const value = rows[i][position];
        keys[i] = value === null || value === undefined || value === "" ? null : String(value).toLowerCase();
      }
      return keys;
    }
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const value = rows[i][position];
      keys[i] = typeof value === "number" ? value : typeof value === "boolean" ? Number(value) : NaN;
    }
    return keys;
  }

  /** The row indexes in the data's order. */
  function identity(n) {
    const order = new Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    return order;
  }

  /** Row indexes sorted by keys: one Array.prototype.sort; nulls last in both directions,
   * ties in the data's order. */
  function sortOrder(keys, kind, descending) {
    const order = identity(keys.length);
    const dir = descending ? -1 : 1;
    const missing = kind === "text" ? (x) => x === null : (x) => x !== x;
    order.sort((a, b) => {
      const x = keys[a];
      const y = keys[b];
      const xMissing = missing(x);
      const yMissing = missing(y);
      if (xMissing || yMissing) return xMissing === yMissing ? a - b : xMissing ? 1 : -1;
      return x < y ? -dir : x > y ? dir : a - b;
    });
    return order;
  }

  /** A filter from the text typed: {state: "none" | "ok" | "invalid", test(key)}.  An
   * invalid expression filters nothing. */
  function parseFilter(kind, text) {
    const source = String(text === null || text === undefined ? "" : text).trim();
    if (source === "") return { state: "none", test: null };
    if (kind === "text") {
      const needle = source.toLowerCase();
      return { state: "ok", test: (key) => key !== null && key.indexOf(needle) >= 0 };
    }
    if (kind === "bool") {
      const wanted = BOOLEANS[source.toLowerCase()];
      if (wanted === undefined) return { state: "invalid", test: null };
      return { state: "ok", test: (key) => key === wanted };
    }
    const range = RANGE.exec(source);
    if (range) {
      const a = Number(range[1]);
      const b = Number(range[2]);
      if (!isFinite(a) || !isFinite(b)) return { state: "invalid", test: null };
      const low = Math.min(a, b);
      const high = Math.max(a, b);
      return { state: "ok", test: (key) => key >= low && key <= high };
    }
    const comparison = COMPARISON.exec(source);
    if (!comparison || !isFinite(Number(comparison[2]))) return { state: "invalid", test: null };
    const limit = Number(comparison[2]);
    const tests = {
      ">": (key) => key > limit,
      ">=": (key) => key >= limit,
      "<": (key) => key < limit,
      "<=": (key) => key <= limit,
      "=": (key) => key === limit,
    };
    return { state: "ok", test: tests[comparison[1] || "="] };
  }

  /** A number as a column's format says: "d", ".Nf", ".Ne" or ".Ng". */
  function formatNumber(value, format) {
    if (typeof value !== "number" || !isFinite(value)) return "";
    if (format === "d") return Math.round(value).toLocaleString("en-US");
    const spec = /^\.(\d+)([efg])$/.exec(format || "");
    if (!spec) return String(value);
    const digits = Number(spec[1]);
    if (spec[2] === "f") return value.toFixed(digits);
    if (spec[2] === "e") return value.toExponential(digits);
    return String(Number(value.toPrecision(Math.max(1, digits))));
  }

  /** The text of a cell (empty for null). */
  function formatCell(value, column) {
    if (value === null || value === undefined) return "";
    if (column.kind === "bool") return value ? "yes" : "no";
    if (column.kind === "number") return formatNumber(value, column.format);
    return String(value);
  }

  /** A URL to put in src or href, or null: none, or a scheme that is not a document's. */
  function safeUrl(value) {
    if (typeof value !== "string" || value === "") return null;
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value);
    return scheme && !/^(https?|file)$/i.test(scheme[1]) ? null : value;
  }

  /* ---- the model: sort, filters and paging over row indexes -------------------------- */

  class TableModel {
    constructor(data) {
      this.columns = data.columns;
      this.rows = data.rows;
      this.position = {};
      data.keys.forEach((key, i) => { this.position[key] = i; });
      this.column = {};
      this.columns.forEach((column) => { this.column[column.key] = column; });
      this.cache = {};
      this.sortKey = null;
      this.descending = false;
      this.filterText = {};
      this.filters = {};
      this.mask = null;
      this.pageSize = DEFAULT_PAGE_SIZE;
      this.page = 0;
      this.order = identity(this.rows.length);
      this.visible = this.order.slice();
    }

    keys(key) {
      if (!this.cache[key]) this.cache[key] = columnKeys(this.rows, this.position[key], this.column[key].kind);
      return this.cache[key];
    }

    value(row, key) {
      const value = this.rows[row][this.position[key]];
      return value === undefined ? null : value;
    }

    /** Sort by a column: ascending, or the other way when it is already the sort. */
    sortBy(key) {
      this.setSort(key, this.sortKey === key ? !this.descending : false);
    }

    setSort(key, descending) {
      if (key !== null && !this.column[key]) return;
      this.sortKey = key;
      this.descending = key !== null && Boolean(descending);
      this.order = key === null
        ? identity(this.rows.length)
        : sortOrder(this.keys(key), this.column[key].kind, this.descending);
      this.page = 0;
      this.applyMask();
    }

    /** Set the filters named (key -> text; others unchanged); the state of each. */
    setFilters(texts) {
      const states = {};
      Object.keys(texts).forEach((key) => {
        if (!this.column[key]) return;
        const filter = parseFilter(this.column[key].kind, texts[key]);
        this.filterText[key] = String(texts[key] === null || texts[key] === undefined ? "" : texts[key]);
        if (filter.state === "ok") this.filters[key] = filter.test;
        else delete this.filters[key];
        states[key] = filter.state;
      });
      this.refilter();
      return states;
    }

    setFilter(key, text) {
      return this.setFilters({ [key]: text })[key];
    }

    refilter() {
      const active = Object.keys(this.filters).map((key) => [this.keys(key), this.filters[key]]);
      if (active.length === 0) {
        this.mask = null;
      } else {
        const n = this.rows.length;
        const mask = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          let pass = 1;
          for (let f = 0; f < active.length; f++) {
            if (!active[f][1](active[f][0][i])) { pass = 0; break; }
          }
          mask[i] = pass;
        }
        this.mask = mask;
      }
      this.page = 0;
      this.applyMask();
    }

    applyMask() {
      const mask = this.mask;
      this.visible = mask === null ? this.order.slice() : this.order.filter((i) => mask[i] === 1);
      this.setPage(this.page);
    }

    setPageSize(size) {
      if (PAGE_SIZES.indexOf(size) < 0) return;
      const first = this.page * this.pageSize;
      this.pageSize = size;
      this.setPage(Math.floor(first / size));
    }

    setPage(page) {
      const last = this.pageCount() - 1;
      this.page = Math.max(0, Math.min(last, Math.floor(Number(page)) || 0));
    }

    pageCount() {
      return Math.max(1, Math.ceil(this.visible.length / this.pageSize));
    }

    pageRows() {
      return this.visible.slice(this.page * this.pageSize, (this.page + 1) * this.pageSize);
    }

    /** The view as a location.hash (without "#"): sort, desc, size, page, f-<key>. */
    toHash() {
      const params = new URLSearchParams();
      if (this.sortKey !== null) params.set("sort", this.sortKey);
      if (this.descending) params.set("desc", "1");
      if (this.pageSize !== DEFAULT_PAGE_SIZE) params.set("size", String(this.pageSize));
      if (this.page > 0) params.set("page", String(this.page + 1));
      this.columns.forEach((column) => {
        const text = this.filterText[column.key];
        if (text) params.set("f-" + column.key, text);
      });
      return params.toString();
    }

    /** Restore a view from a hash; the state of each filter (key -> none/ok/invalid). */
    fromHash(hash) {
      const params = new URLSearchParams(String(hash || "").replace(/^#/, ""));
      const texts = {};
      this.columns.forEach((column) => { texts[column.key] = params.get("f-" + column.key) || ""; });
      const states = this.setFilters(texts);
      const key = params.get("sort");
      this.setSort(key && this.column[key] ? key : null, params.get("desc") === "1");
      const size = Number(params.get("size"));
      this.pageSize = PAGE_SIZES.indexOf(size) >= 0 ? size : DEFAULT_PAGE_SIZE;
      this.setPage(Number(params.get("page") || 1) - 1);
      return states;
    }
  }

  /* ---- the page: controls, table, rows ------------------------------------------------ */

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    Object.keys(attributes || {}).forEach((name) => node.setAttribute(name, attributes[name]));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  class TableView {
    constructor(root, model) {
      this.root = root;
      this.model = model;
      this.inputs = {};
      this.timers = {};
      this.lastHash = null;
      this.build();
      this.showStates(model.fromHash(window.location.hash));
      this.update();
      window.addEventListener("hashchange", () => this.onHashChange());
    }

    build() {
      this.root.textContent = "";
      this.root.appendChild(this.buildControls());
      const table = element("table", { id: "catalogue", class: "catalogue" });
      const head = element("thead");
      head.appendChild(this.buildHeadings());
      head.appendChild(this.buildFilters());
      this.body = element("tbody");
      table.appendChild(head);
      table.appendChild(this.body);
      this.root.appendChild(table);
      this.noMatch = element("p", { id: "no-match", class: "note" }, "No lightcurve matches the filters.");
      this.noMatch.hidden = true;
      this.root.appendChild(this.noMatch);
    }

    buildControls() {
      const controls = element("div", { class: "catalogue-controls" });
      this.count = element("span", { id: "shown-count", role: "status", "aria-live": "polite" });
      const label = element("label", { for: "page-size" }, "rows per page ");
      this.size = element("select", { id: "page-size" });
      PAGE_SIZES.forEach((size) => this.size.appendChild(element("option", { value: String(size) }, String(size))));
      this.size.addEventListener("change", () => { this.model.setPageSize(Number(this.size.value)); this.update(); });
      this.previous = element("button", { id: "prev-page", type: "button" }, "\u2039 prev");
      this.previous.addEventListener("click", () => { this.model.setPage(this.model.page - 1); this.update(); });
      this.pageNumber = element("span", { id: "page-number" });
      this.next = element("button", { id: "next-page", type: "button" }, "next \u203a");
      this.next.addEventListener("click", () => { this.model.setPage(this.model.page + 1); this.update(); });
      const clear = element("button", { id: "clear-filters", type: "button" }, "clear filters");
      clear.addEventListener("click", () => this.clearFilters());
      [this.count, label, this.size, this.previous, this.pageNumber, this.next, clear]
        .forEach((node) => controls.appendChild(node));
      return controls;
    }

    buildHeadings() {
      const row = element("tr", { class: "headings" });
      row.appendChild(element("th", { scope: "col" }, "quicklook"));
      this.headings = {};
      this.model.columns.forEach((column) => {
        const cell = element("th", { scope: "col", "data-key": column.key, tabindex: "0",
          class: column.kind === "number" ? "number sortable" : "sortable", title: "sort by " + column.heading });
        cell.appendChild(document.createTextNode(column.heading));
        cell.appendChild(element("span", { class: "sort-arrow", "aria-hidden": "true" }));
        this.headings[column.key] = cell;
        row.appendChild(cell);
      });
      row.appendChild(element("th", { scope: "col" }, "links"));
      row.addEventListener("click", (event) => this.onSort(event));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); this.onSort(event); }
      });
      return row;
    }

    buildFilters() {
      const row = element("tr", { class: "filters" });
      row.appendChild(element("th"));
      this.model.columns.forEach((column) => {
        const cell = element("th", { class: column.kind === "number" ? "number" : "" });
        const input = element("input", { type: "text", "data-filter": column.key, autocomplete: "off",
          spellcheck: "false", placeholder: column.kind === "text" ? "filter" : column.kind === "bool" ? "yes/no" : ">3, 1..5",
          "aria-label": "filter " + column.heading + ": " + HINTS[column.kind] });
        input.addEventListener("input", () => this.onFilterInput(column.key));
        this.inputs[column.key] = input;
        cell.appendChild(input);
        row.appendChild(cell);
      });
      row.appendChild(element("th"));
      return row;
    }

    onSort(event) {
      const cell = event.target.closest ? event.target.closest("th[data-key]") : null;
      if (!cell) return;
      this.model.sortBy(cell.getAttribute("data-key"));
      this.update();
    }

    onFilterInput(key) {
      clearTimeout(this.timers[key]);
      this.timers[key] = setTimeout(() => {
        const state = this.model.setFilter(key, this.inputs[key].value);
        this.showStates({ [key]: state });
        this.update();
      }, DEBOUNCE_MS);
    }

    clearFilters() {
      const texts = {};
      Object.keys(this.inputs).forEach((key) => {
        clearTimeout(this.timers[key]);
        this.inputs[key].value = "";
        texts[key] = "";
      });
      this.showStates(this.model.setFilters(texts));
      this.update();
    }

    /** Mark inputs valid or invalid (class, title, aria-invalid); sync their text. */
    showStates(states) {
      Object.keys(states).forEach((key) => {
        const input = this.inputs[key];
        const column = this.model.column[key];
        if (input.value !== this.model.filterText[key]) input.value = this.model.filterText[key] || "";
        const invalid = states[key] === "invalid";
        input.classList.toggle("invalid", invalid);
        input.setAttribute("aria-invalid", invalid ? "true" : "false");
        input.title = invalid ? "not understood (filters nothing): use " + HINTS[column.kind] : HINTS[column.kind];
      });
    }

    onHashChange() {
      if (window.location.hash === this.lastHash) return;
      this.showStates(this.model.fromHash(window.location.hash));
      this.update();
    }

    update() {
      const model = this.model;
      this.renderRows();
      Object.keys(this.headings).forEach((key) => {
        const cell = this.headings[key];
        const sorted = model.sortKey === key;
        if (sorted) cell.setAttribute("aria-sort", model.descending ? "descending" : "ascending");
        else cell.removeAttribute("aria-sort");
        cell.querySelector(".sort-arrow").textContent = sorted ? (model.descending ? " \u25bc" : " \u25b2") : "";
      });
      const shown = model.visible.length;
      const total = model.rows.length;
      this.count.textContent = shown.toLocaleString("en-US") + " of " + total.toLocaleString("en-US") +
        (total === 1 ? " lightcurve" : " lightcurves");
      this.pageNumber.textContent = "page " + (model.page + 1).toLocaleString("en-US") + " of " +
        model.pageCount().toLocaleString("en-US");
      this.size.value = String(model.pageSize);
      this.previous.disabled = model.page === 0;
      this.next.disabled = model.page >= model.pageCount() - 1;
      this.noMatch.hidden = shown > 0;
      this.writeHash();
    }

    renderRows() {
      const fragment = document.createDocumentFragment();
      this.model.pageRows().forEach((row) => fragment.appendChild(this.renderRow(row)));
      this.body.textContent = "";
      this.body.appendChild(fragment);
    }

    renderRow(row) {
      const model = this.model;
      const tr = element("tr");
      const thumbCell = element("td", { class: "thumb" });
      const thumbnail = safeUrl(model.value(row, "thumbnail"));
      if (thumbnail) {
        const image = element("img", { class: "thumb", loading: "lazy", alt: "quicklook of " + model.value(row, "lightcurve") });
        image.src = thumbnail;
        const page = safeUrl(model.value(row, "page"));
        if (page) {
          const link = element("a", { class: "thumb-link", href: page });
          link.appendChild(image);
          thumbCell.appendChild(link);
        } else {
          thumbCell.appendChild(image);
        }
      }
      tr.appendChild(thumbCell);
      model.columns.forEach((column) => {
        const value = model.value(row, column.key);
        const attributes = column.kind === "number" ? { class: "number" } : {};
        attributes["data-key"] = column.key;
        const cell = element("td", attributes, formatCell(value, column));
        if (column.kind === "number" && value !== null) cell.title = String(value);
        tr.appendChild(cell);
      });
      const links = element("td", { class: "links" });
      [["page", "page"], ["periodogram", "periodogram"], ["fits", "FITS"]].forEach(([key, text]) => {
        const url = safeUrl(model.value(row, key));
        if (!url) return;
        if (links.childNodes.length) links.appendChild(document.createTextNode(" "));
        links.appendChild(element("a", { class: key, href: url }, text));
      });
      tr.appendChild(links);
      return tr;
    }

    writeHash() {
      const hash = this.model.toHash();
      const target = hash ? "#" + hash : "";
      if (window.location.hash === target) return;
      this.lastHash = target;
      const url = target || window.location.pathname + window.location.search;
      try {
        window.history.replaceState(null, "", url);
      } catch (error) {
        window.location.replace(target || "#");
      }
    }
  }

  function start() {
    const root = document.getElementById("catalogue-root");
    if (!root) return;
    const data = window[root.getAttribute("data-global") || "HSTLC_TABLE"];
    if (!data || !Array.isArray(data.rows) || !Array.isArray(data.columns)) {
      root.textContent = "";
      root.appendChild(element("p", { class: "note error" },
        "The table's data file did not load: it should be beside this page."));
      return;
    }
    new TableView(root, new TableModel(data));
  }

  if (typeof module !== "undefined" && module.exports) {
    module.exports = { TableModel, columnKeys, formatCell, formatNumber, parseFilter, safeUrl, sortOrder,
      PAGE_SIZES, DEFAULT_PAGE_SIZE };
  } else if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }
})();
