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
