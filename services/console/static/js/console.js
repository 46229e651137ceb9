// Tree picker: show the units whose name contains the search text (and hide the rest).
function pickerFilter(input) {
  var text = input.value.trim();
  var items = input.closest('.picker').querySelectorAll('.picker-item[data-name]');
  items.forEach(function (item) {
    item.style.display = (!text || item.dataset.name.indexOf(text) >= 0) ? '' : 'none';
  });
}
// Add one more empty procedure step row to the micro-power editor.
function addStep(button) {
  var body = button.closest('form').querySelector('tbody.steps');
  var row = body.querySelector('tr').cloneNode(true);
  row.querySelectorAll('input').forEach(function (i) { i.value = ''; });
  body.appendChild(row);
}
// Date fields: the vendored Chinese date picker instead of the browser's own widget, whose
// format follows the browser's language (an English browser shows mm/dd/yyyy). The value
// stays ISO (2026-12-31), which the services take and a person can still type.
function chineseDatePickers(root) {
  if (typeof flatpickr === 'undefined') { return; }
  root.querySelectorAll('input[type=date]').forEach(function (input) {
    input.type = 'text';
    input.placeholder = input.placeholder || '年-月-日，如 2026-12-31';
    flatpickr(input, {locale: 'zh', dateFormat: 'Y-m-d', allowInput: true});
  });
}
// File fields: the browser's own button and "no file chosen" text follow its language too;
// a Chinese button opens the (hidden, still submitted) input and lists the chosen names.
function chineseFileInputs(root) {
  root.querySelectorAll('input[type=file]').forEach(function (input) {
    if (input.dataset.zh) { return; }
    input.dataset.zh = '1';
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'file-choose';
    button.textContent = '选择文件';
    var names = document.createElement('span');
    names.className = 'file-names';
    names.textContent = '未选择文件';
    button.addEventListener('click', function () { input.click(); });
    input.addEventListener('change', function () {
      names.textContent = input.files.length
        ? Array.prototype.map.call(input.files, function (f) { return f.name; }).join('、')
        : '未选择文件';
    });
    input.style.display = 'none';
    input.after(button, names);
  });
}
function chinesePage(root) { chineseDatePickers(root); chineseFileInputs(root); }
document.addEventListener('DOMContentLoaded', function () { chinesePage(document); });
document.addEventListener('htmx:load', function (event) { chinesePage(event.target); });
