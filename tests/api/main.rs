mod mock_layer;
